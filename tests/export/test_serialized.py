"""The exported model: same outputs as the training model, loadable with jax alone."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.assets import AssetError
from jaxface.cli import main
from jaxface.export.model_dir import load_run
from jaxface.export.serialized import export_inference
from jaxface.reconstruction.model_folder import flatten_variables, load_model
from jaxface.reconstruction.predict import OUTPUTS, predict


def _inputs(rng, batch, size=64):
    return {"image": rng.random((batch, size, size, 3), dtype=np.float32),
            "landmarks": (rng.random((batch, 68, 2)) * size).astype(np.float32),
            "mask": (rng.random((batch, size, size, 1)) > 0.3).astype(np.float32)}


def _training_model_outputs(tiny_run, inputs):
    """predict() on the run's checkpoint directly (the training-side network and assets)."""
    cfg, assets, graphdef, params, stats, _, _ = load_run(tiny_run, "last")
    out = jax.jit(lambda p, s, b: predict(graphdef, p, s, b, assets, cfg))(
        params, stats, jax.tree.map(jnp.asarray, inputs))
    return jax.device_get(out)


def test_model_folder_contents(tiny_model):
    files = {p.name for p in tiny_model.iterdir()}
    assert files == {"config.json", "variables.npz", "face_model.npz", "manifest.json",
                     "README.md", "infer_batch_2.jaxexport", "infer_batch_any.jaxexport"}
    manifest = json.loads((tiny_model / "manifest.json").read_text())
    assert manifest["origin"]["step"] == 0 and manifest["origin"]["checkpoint"] == "best"
    assert set(manifest["outputs"]) == set(OUTPUTS)
    assert manifest["exports"]["infer_batch_any.jaxexport"]["batch"] == "any"
    with np.load(tiny_model / "variables.npz") as v:   # inference variables only
        assert all(k.startswith(("params/", "batch_stats/")) for k in v.files)
        assert not any("opt" in k or k.endswith("/mu") for k in v.files)


def test_model_folder_keeps_the_runs_uv_regions(tiny_run, tiny_model):
    """The face-and-eye and face masks and the fixed displacement travel with the model."""
    run_assets = load_run(tiny_run, "last")[1]
    model_assets = load_model(tiny_model).assets
    for key in ("uv_face_eye_mask", "uv_face_mask", "fixed_displacement"):
        np.testing.assert_array_equal(np.asarray(getattr(model_assets, key)),
                                      np.asarray(getattr(run_assets, key)), err_msg=key)


@pytest.mark.parametrize("name,batch", [("infer_batch_2.jaxexport", 2),
                                        ("infer_batch_any.jaxexport", 3)])
def test_exported_function_matches_the_training_model(tiny_run, tiny_model, rng, name, batch):
    inputs = _inputs(rng, batch)
    expected = _training_model_outputs(tiny_run, inputs)
    exported = jax.export.deserialize((tiny_model / name).read_bytes())
    variables = dict(np.load(tiny_model / "variables.npz"))
    face_model = dict(np.load(tiny_model / "face_model.npz"))
    got = jax.device_get(exported.call(variables, face_model, inputs["image"],
                                       inputs["landmarks"], inputs["mask"]))
    assert set(got) == set(expected) == set(OUTPUTS)
    for k in OUTPUTS:
        assert got[k].shape == expected[k].shape and got[k].shape[0] == batch, k
        scale = max(float(np.abs(expected[k]).max()), 1e-6)
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=k)
    # Not a constant function of the input: another image gives other parameters.
    other = exported.call(variables, face_model, inputs["image"][::-1],
                          inputs["landmarks"][::-1], inputs["mask"][::-1])
    assert not np.allclose(np.asarray(other["shape"]), got["shape"])


def test_the_artifact_holds_the_program_not_the_face_model(tiny_model, rng):
    """The face model is an input: the .jaxexport is a small fraction of face_model.npz, and
    another face model (the template moved, the albedo mean brightened) moves the outputs
    exactly as it should."""
    path = tiny_model / "infer_batch_any.jaxexport"
    assert path.stat().st_size < 0.1 * (tiny_model / "face_model.npz").stat().st_size
    exported = jax.export.deserialize(path.read_bytes())
    inputs = _inputs(rng, 1)
    variables = dict(np.load(tiny_model / "variables.npz"))
    face_model = dict(np.load(tiny_model / "face_model.npz"))
    base = exported.call(variables, face_model, *inputs.values())
    shift = rng.normal(size=3).astype(np.float32) * 0.01
    moved = face_model | {"v_template": face_model["v_template"] + shift,
                          "albedo_mean": face_model["albedo_mean"] + 0.05}
    got = exported.call(variables, moved, *inputs.values())
    np.testing.assert_allclose(np.asarray(got["neutral_vertices"]),
                               np.asarray(base["neutral_vertices"]) + shift, atol=1e-5)
    # The albedo is clipped to [0, 1]: compare where neither end is reached.
    before, after = np.asarray(base["albedo"]), np.asarray(got["albedo"])
    inside = (before > 1e-6) & (before + 0.05 < 1 - 1e-6)
    assert inside.mean() > 0.9
    np.testing.assert_allclose(after[inside], before[inside] + 0.05, atol=1e-5)


def test_fixed_batch_export_refuses_another_batch_size(tiny_model, rng):
    exported = jax.export.deserialize((tiny_model / "infer_batch_2.jaxexport").read_bytes())
    inputs = _inputs(rng, 3)
    with pytest.raises(ValueError, match="shape"):
        exported.call(dict(np.load(tiny_model / "variables.npz")),
                      dict(np.load(tiny_model / "face_model.npz")), inputs["image"],
                      inputs["landmarks"], inputs["mask"])


SCRIPT = """
import sys
sys.modules["jaxface"] = None          # any import of jaxface now fails
import jax, numpy as np
model, inputs, out = sys.argv[1:4]
fn = jax.export.deserialize(open(model + "/infer_batch_any.jaxexport", "rb").read())
variables = dict(np.load(model + "/variables.npz"))
face_model = dict(np.load(model + "/face_model.npz"))
x = np.load(inputs)
result = fn.call(variables, face_model, x["image"], x["landmarks"], x["mask"])
np.savez(out, **{k: np.asarray(v) for k, v in result.items()})
print("jaxface imported:", any(m.startswith("jaxface") and sys.modules[m] is not None
                               for m in sys.modules))
"""


def test_exported_model_runs_in_a_process_without_jaxface(tiny_run, tiny_model, rng,
                                                           tmp_path):
    inputs = _inputs(rng, 2)
    np.savez(tmp_path / "in.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_model), str(tmp_path /
                          "in.npz"), str(tmp_path / "out.npz")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "jaxface imported: False" in proc.stdout
    expected = _training_model_outputs(tiny_run, inputs)
    with np.load(tmp_path / "out.npz") as got:
        for k in OUTPUTS:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-5,
                                       atol=1e-6 * max(float(np.abs(expected[k]).max()), 1e-6))


def test_exports_for_cuda_lower_on_a_cpu_machine(tiny_model):
    exported = export_inference(load_model(tiny_model), None, ("cpu", "cuda"))
    assert exported.platforms == ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown platform"):
        export_inference(load_model(tiny_model), 1, ("gpu",))


def test_wrong_variables_are_named(tiny_model, tmp_path):
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(tiny_model, broken)
    with np.load(broken / "variables.npz") as v:
        flat = {k: v[k] for k in v.files}
    name = sorted(k for k in flat if k.startswith("params/"))[0]
    np.savez(broken / "variables.npz", **{**flat, name: flat[name][..., :1]})
    with pytest.raises(AssetError, match=f"variable {name} has shape"):
        load_model(broken)
    del flat[name]
    np.savez(broken / "variables.npz", **flat)
    with pytest.raises(AssetError, match="missing"):
        load_model(broken)
    (broken / "variables.npz").unlink()
    with pytest.raises(AssetError, match="variables.npz: missing"):
        load_model(broken)


def test_flatten_roundtrip_keeps_every_array(tiny_model):
    model = load_model(tiny_model)
    flat = flatten_variables(model.params, model.batch_stats)
    with np.load(tiny_model / "variables.npz") as v:
        assert set(flat) == set(v.files)
        for k in list(flat)[:20]:
            np.testing.assert_array_equal(flat[k], v[k])


def test_export_cli(tiny_run, tmp_path, capsys):
    assert main(["export", f"--workdir={tiny_run}", f"--out={tmp_path / 'm'}",
                 "--which=last"]) == 0
    assert "infer_batch_any.jaxexport" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "m").glob("*.jaxexport")) == [
        "infer_batch_any.jaxexport"]           # the fixed-batch one only when asked
    assert not (tmp_path / "m.partial").exists()
    assert main(["export", f"--workdir={tmp_path / 'none'}", f"--out={tmp_path / 'x'}"]) == 2
    assert "no config" in capsys.readouterr().err
