import pathlib

import numpy as np
import pytest

from jaxface import flame
from jaxface.cli import main

MODEL_CONFIG = str(pathlib.Path(__file__).parents[1] / "configs" / "model.py")


def test_flame_asset_writes_a_loadable_model(tmp_path, capsys, model):
    out = tmp_path / "new" / "folder" / "head.npz"
    assert main(["flame-asset", "--out", str(out)]) == 0
    assert "vertices 5023, triangles 9976" in capsys.readouterr().out
    loaded = flame.load_flame(out)
    np.testing.assert_array_equal(np.asarray(loaded.v_template), np.asarray(model.v_template))
    assert flame.load_flame(out, n_shape=300, n_expression=100).n_shape == 300
    assert flame.load_albedo(out).basis.shape == (256, 256, 3, 20)
    assert not list(out.parent.glob("*.partial*"))
    assert main(["flame-info", str(out)]) == 0
    assert "a valid FLAME model" in capsys.readouterr().out


def test_flame_info_reports_a_missing_file(tmp_path, capsys):
    assert main(["flame-info", str(tmp_path / "generic_model.pkl")]) == 2
    err = capsys.readouterr().err
    assert "flame file not found" in err and "flame.is.tue.mpg.de" in err


def test_flame_asset_reports_an_unwritable_path(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["flame-asset", "--out", str(blocker / "head.npz")]) == 2
    assert "error" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


def test_model_summary_with_overrides_and_ablations(capsys):
    assert main(["model-summary", f"--config={MODEL_CONFIG}", "--config.use_grpam=False",
                 "--config.image_size=128", "--ablations"]) == 0
    out = capsys.readouterr().out
    assert "GRPAM off" in out and "input  (B, 128, 128, 5)" in out and "GRPAM RGA" not in out
    assert "E_c -> code (B, 236)" in out and len(out.split("PIM  GRPAM")[1].splitlines()) == 5


def test_model_summary_counts_emocas_expression_encoder(capsys):
    config = str(pathlib.Path(__file__).parents[1] / "configs" / "emoca.py")
    assert main(["model-summary", f"--config={config}"]) == 0
    out = capsys.readouterr().out
    rows = {line.rsplit(" ", 1)[0].strip(): int(line.rsplit(" ", 1)[1].replace(",", ""))
            for line in out.splitlines() if line.rstrip()[-1:].isdigit() and "  " in line}
    assert rows["network total"] == (rows["E_c total"] + rows["E_d (ResNet50 + FC)"]
                                     + rows["F_d (detail decoder)"]
                                     + rows["E_expression (EMOCA's, ResNet50 + FC)"])
    assert "E_expression -> (B, 53): replaces E_c's expression, jaw" in out


def test_model_summary_counts_the_albedo_components_a_run_uses(capsys):
    """configs/synthetic.py asks for 50 albedo components; its head's albedo has 20, which
    is what training uses, so the summary says 20 (as load_assets does)."""
    from jaxface.configs import load_config
    from jaxface.reconstruction.assets import load_assets

    config = str(pathlib.Path(__file__).parents[1] / "configs" / "synthetic.py")
    assert main(["model-summary", f"--config={config}"]) == 0
    used = load_assets(load_config([f"--config={config}"])).sizes["tex"]
    assert used < 50 and f"tex {used}," in capsys.readouterr().out


def test_a_bad_config_value_is_one_line_unless_a_traceback_is_asked_for(capsys, monkeypatch):
    args = ["model-summary", f"--config={MODEL_CONFIG}", "--config.uv_size=100"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["jaxface model-summary: error: the detail decoder's UV size must be a "
                   "multiple of 32 (five doublings of the seed map), got 100"]
    monkeypatch.setenv("JAXFACE_TRACEBACK", "1")
    with pytest.raises(ValueError, match="multiple of 32"):
        main(args)


def test_model_summary_rejects_unknown_fields_and_flags(capsys):
    assert main(["model-summary", f"--config={MODEL_CONFIG}", "--config.use_gpram=False"]) == 2
    assert "unknown config field(s) config.use_gpram" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["flame-info", "x.npz", "--config.nope=1"])


def test_synth_writes_a_dataset(tmp_path, capsys):
    from jaxface.data.records import read_info

    assert main(["synth", "--out", str(tmp_path / "ds"), "--identities", "2",
                 "--per-identity", "2", "--image-size", "32", "--batch", "4",
                 "--val-identities", "1"]) == 0
    assert "wrote 6 examples (2 + 1 val identities x 2)" in capsys.readouterr().out
    assert read_info(tmp_path / "ds")["splits"]["train"]["examples"] == 4


@pytest.mark.parametrize("args, message", [
    (["--identities", "0"], "--identities: must be at least 1, got 0"),
    (["--identities", "-3"], "--identities: must be at least 1, got -3"),
    (["--per-identity", "0"], "--per-identity: must be at least 1"),
    (["--image-size", "abc"], "--image-size: 'abc' is not an integer"),
    (["--occluder-prob", "2"], "--occluder-prob: must be in [0, 1]"),
])
def test_synth_rejects_bad_arguments_before_writing(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--out", str(tmp_path / "data"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("command", ["train", "model-summary"])
def test_a_missing_or_broken_config_file_is_one_line(command, tmp_path, capsys):
    assert main([command, f"--config={tmp_path / 'nope.py'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"jaxface {command}: error: config file {tmp_path / 'nope.py'} not found"
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    assert main([command, f"--config={broken}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the file failed to load: SyntaxError" in err[0]


def test_install_hints_are_safe_on_a_cpu_machine():
    """Extras needing torch say to install PyTorch's CPU wheel first; face needs no torch."""
    import tomllib

    from jaxface.assets import install_hint

    for extra in ("torch", "fan"):
        hint = install_hint(extra)
        assert hint.index("download.pytorch.org/whl/cpu") < hint.index(f"jaxface[{extra}]")
    assert "torch" not in install_hint("face") and "-e '.[face]'" in install_hint("face")
    extras = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    assert not any("torch" in d or "face-alignment" in d for d in extras["face"])


def test_an_unavailable_render_backend_is_one_line(tmp_path, capsys):
    """On a machine without the built nvdiffrast library (CI, this test's premise), asking for
    it is an error line naming the fix, not a traceback."""
    from jaxface.data.synthetic import SynthSettings, generate
    from jaxface.render.backend import nvdiffrast_unavailable_reason

    if nvdiffrast_unavailable_reason() is None:
        pytest.skip("nvdiffrast can run here: nothing to report")
    generate(tmp_path / "data", 1, 1, settings=SynthSettings(image_size=64), progress=False)
    config = pathlib.Path(__file__).parents[1] / "configs" / "synthetic.py"
    code = main(["train", f"--config={config}", "--config.render.backend=nvdiffrast",
                 f"--config.data.dir={tmp_path / 'data'}", f"--workdir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("jaxface train: error: the nvdiffrast backend cannot run here")


def test_every_option_says_what_it_is():
    import argparse

    from jaxface.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}"
               for name, parser in sub.choices.items() for a in parser._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing


def test_missing_inputs_and_a_bad_out_fail_before_the_model_loads(tmp_path, capsys):
    """Checked first: no model is read (the model folder here does not even exist)."""
    assert main(["reconstruct", "--model", str(tmp_path / "no_model"), str(tmp_path / "nope.jpg"),
                 "--out", str(tmp_path / "out")]) == 2
    assert f"no such photo, video or folder: {tmp_path / 'nope.jpg'}" in capsys.readouterr().err
    (tmp_path / "photo.jpg").write_bytes(b"x")
    code = main(["reconstruct", "--model", str(tmp_path / "no_model"),
                 str(tmp_path / "photo.jpg"), "--out", str(tmp_path / "photo.jpg" / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "photo.jpg/out" in err and "no_model" not in err, err


def test_the_cli_keeps_a_persistent_compilation_cache(tmp_path):
    import os
    import subprocess
    import sys

    show = ("from jaxface.cli import use_compilation_cache; use_compilation_cache(); "
            "import jax; print(jax.config.jax_compilation_cache_dir)")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", show], env=env | {"XDG_CACHE_HOME": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(tmp_path / "jaxface" / "xla")
    # Small programs are cached too (the network's and assets' eager ops), within a bound.
    limits = show.replace("print(jax.config.jax_compilation_cache_dir)",
                          "print(jax.config.jax_persistent_cache_min_compile_time_secs, "
                          "jax.config.jax_compilation_cache_max_size)")
    out = subprocess.run([sys.executable, "-c", limits],
                         env=env | {"XDG_CACHE_HOME": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) == 0.0 and 0 < int(out[1]) <= 4 * 2**30
    mine = str(tmp_path / "mine")
    out = subprocess.run([sys.executable, "-c", show],
                         env=env | {"JAX_COMPILATION_CACHE_DIR": mine},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == mine


def test_cache_entries_of_an_unbounded_cache_get_access_stamps(tmp_path):
    """JAX's bounded cache reads every entry's "-atime" stamp to evict; entries written
    without a bound have none, which made every later write warn FileNotFoundError."""
    import jax._src.lru_cache as lru

    from jaxface.cli import stamp_unbounded_cache_entries

    unbounded = lru.LRUCache(str(tmp_path), max_size=-1)
    unbounded.put("old", b"x" * 100)
    assert not (tmp_path / "old-atime").exists()
    stamp_unbounded_cache_entries(tmp_path)
    bounded = lru.LRUCache(str(tmp_path), max_size=150)
    bounded.put("new", b"y" * 100)      # evicts "old" by its stamp instead of failing
    assert bounded.get("new") == b"y" * 100 and bounded.get("old") is None
    stamp_unbounded_cache_entries(tmp_path / "absent")   # no cache yet: nothing to do
