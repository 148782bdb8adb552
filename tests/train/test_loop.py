import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxface.cli import main
from jaxface.configs import load_config
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.train.checkpoint import COMPLETE_MARKER, Checkpoints, restore_state
from jaxface.train.loop import _check_same_optimiser, train_and_evaluate

ROOT = pathlib.Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "synthetic.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """2 identities x 2 images, no val split (no eval: the tests time the train loop)."""
    out = tmp_path_factory.mktemp("synth")
    generate(out, identities=2, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64, occluder_prob=0.0))
    return out


def _args(data, steps):
    return [f"--config={CONFIG}", "--config.model.use_grpam=False",
            "--config.model.image_size=64", f"--config.data.dir={data}",
            "--config.data.identities_per_batch=1", "--config.data.images_per_identity=2",
            f"--config.train.steps={steps}",
            "--config.train.checkpoint_every=2", "--config.train.log_every=1"]


def _log_rows(workdir):
    """The run's logged rows (metrics.jsonl), in order."""
    rows = []
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:   # the line a running (or killed) writer had not ended
            continue
    return rows


def _log(workdir):
    """The last logged train metrics of each step (a resumed run logs the steps after its
    checkpoint again)."""
    return {r["step"]: r for r in _log_rows(workdir) if r["kind"] == "train"}


@pytest.mark.slow
def test_run_killed_by_sigkill_resumes_bit_for_bit(data, tmp_path):
    steps = 6
    straight = train_and_evaluate(load_config(_args(data, steps)), tmp_path / "a",
                                  progress=False)
    # The same run in a subprocess, SIGKILLed once its step-4 checkpoint is complete.
    killed = tmp_path / "b"
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "")
    proc = subprocess.Popen([sys.executable, "-m", "jaxface.cli", "train", *_args(data, 100),
                             f"--workdir={killed}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if (killed / "checkpoints" / "4").is_dir():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = train_and_evaluate(load_config(_args(data, steps)), killed, progress=False)
    assert resumed["step"] == straight["step"] == steps
    assert resumed["loss"] == straight["loss"]
    assert Checkpoints(tmp_path / "a").latest_step() == Checkpoints(killed).latest_step() == steps
    jax.tree.map(np.testing.assert_array_equal, restore_state(tmp_path / "a", None),
                 restore_state(killed, None))
    log_a, log_b = _log(tmp_path / "a"), _log(killed)
    assert sorted(log_a) == list(range(1, steps + 1))
    for step in log_a:
        assert {k: v for k, v in log_a[step].items() if k != "images_per_second"} == \
               {k: v for k, v in log_b[step].items() if k != "images_per_second"}
    assert (killed / "config.json").is_file() and (killed / "tensorboard").is_dir()


@pytest.mark.slow
def test_a_kill_redoes_at_most_two_checkpoint_intervals(data, tmp_path):
    """One save in flight: when step k is logged, the save before the last one has completed,
    so a SIGKILL then redoes at most 2 x checkpoint_every steps (one, once the newest save has
    finished); the resumed run starts from the newest complete checkpoint."""
    interval = 2
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "")
    workdir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "jaxface.cli", "train", *_args(data, 100),
                             f"--workdir={workdir}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if (workdir / "metrics.jsonl").is_file() and max(_log(workdir), default=0) >= 9:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    logged = max(_log(workdir))
    checkpoints = Checkpoints(workdir)          # removes what the kill left half-written
    newest = checkpoints.latest_step()
    checkpoints.close()
    assert newest is not None and logged - newest <= 2 * interval, (logged, newest)
    out = train_and_evaluate(load_config(_args(data, logged + 1)), workdir, progress=False)
    assert out["step"] == logged + 1


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_stops(data, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "")
    workdir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "jaxface.cli", "train", *_args(data, 1000),
                             "--config.train.checkpoint_every=1000", f"--workdir={workdir}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        log = workdir / "metrics.jsonl"
        if log.is_file() and log.read_text().count("\n") >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "stopped by SIGTERM" in out
    saved = Checkpoints(workdir).latest_step()
    assert saved is not None and 2 <= saved < 1000


def test_missing_data_and_bad_stage_are_clear_errors(tmp_path, capsys):
    assert main(["train", f"--config={CONFIG}", f"--config.data.dir={tmp_path / 'none'}",
                 f"--workdir={tmp_path / 'w'}"]) == 2
    assert "no dataset at data.dir" in capsys.readouterr().err
    assert main(["train", f"--config={CONFIG}", "--config.train.stage=fine",
                 f"--workdir={tmp_path / 'w'}"]) == 2
    assert "train.stage must be one of" in capsys.readouterr().err


def test_resuming_with_another_optimiser_is_a_clear_error(data, tmp_path, capsys):
    work = tmp_path / "w"
    (work / "checkpoints" / "5").mkdir(parents=True)
    saved = json.dumps({"optim": {"name": "adam", "lr": 1e-4}})   # from before optim.schedule
    (work / "config.json").write_text(saved)
    cfg = load_config([f"--config={CONFIG}", "--config.optim.schedule=cosine"])
    # Killed before its first save finished (no completion marker): nothing is restored.
    _check_same_optimiser(cfg, work)
    (work / "checkpoints" / "5" / COMPLETE_MARKER).write_text("{}")
    assert main(["train", *_args(data, 1), "--config.optim.schedule=cosine",
                 f"--workdir={work}"]) == 2
    assert "trained with optim.schedule='constant'" in capsys.readouterr().err
    assert (work / "config.json").read_text() == saved


@pytest.mark.slow
def test_non_finite_steps_in_a_row_stop_the_run_with_the_last_checkpoint_intact(data, tmp_path):
    """Every batch has NaN landmarks: no step is applied, and after
    train.max_nonfinite_steps of them the run stops, its checkpoint holding the initial
    parameters."""
    from jaxface.data.records import decode_example, shard_paths, write_shard
    from jaxface.train.periodic import NonFiniteLossError

    poisoned = tmp_path / "data"
    shutil.copytree(data, poisoned)
    from array_record.python.array_record_data_source import ArrayRecordDataSource

    for path in shard_paths(poisoned, "train"):
        source = ArrayRecordDataSource([path])
        examples = [decode_example(source[i]) for i in range(len(source))]
        for ex in examples:
            ex["landmarks"] = np.full_like(ex["landmarks"], np.nan)
        write_shard(pathlib.Path(path), examples)
    args = _args(poisoned, 10) + ["--config.train.max_nonfinite_steps=3"]
    with pytest.raises(NonFiniteLossError, match="3 steps in a row"):
        train_and_evaluate(load_config(args), tmp_path / "run", progress=False)
    assert Checkpoints(tmp_path / "run").latest_step() == 2
    from jaxface.export.model_dir import load_run
    from jaxface.reconstruction.model_folder import model_from_config

    cfg = load_config(args)
    _, _, _, params, stats, step, _ = load_run(tmp_path / "run", "last")
    fresh = model_from_config(cfg, cfg.train.seed)
    assert step == 2
    jax.tree.map(np.testing.assert_array_equal, (params, stats),
                 (fresh.params, fresh.batch_stats))
    rows = _log_rows(tmp_path / "run")
    assert [r["finite"] for r in rows if r["kind"] == "train"] == [0.0, 0.0, 0.0]


def _planted_vgg19(path):
    """Fixed random VGG19 weights in torchvision's features layout (as vgg19-dcbb9e9d.pth has).
    Not drawn per run: the training tests that plant them check that a stage trains, and take
    minutes each; the network's numerics under fresh random weights are
    tests/losses/nets/test_vgg19.py's and tests/losses/test_perceptual.py's."""
    from flax import nnx

    from jaxface.losses.nets.vgg19 import VGG19Features

    net = VGG19Features("relu4_2", rngs=nnx.Rngs(0))
    arrays = {}
    for index, conv in zip(net.conv_indices, net.convs, strict=True):
        kernel = np.asarray(conv.kernel[...])
        arrays[f"features.{index}.weight"] = kernel.transpose(3, 2, 0, 1)
        arrays[f"features.{index}.bias"] = np.asarray(conv.bias[...])
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_pretrain_coarse_detail_chain(data, tmp_path):
    """DECA's three stages through train.init_from: the landmark-only pretraining (nothing
    rendered), the coarse stage from its E_c, the detail stage from the coarse E_c with the
    paper's ID-MRF on planted VGG19 weights; each stage trains only its own parts."""
    pre_dir, coarse_dir, detail_dir = tmp_path / "pre", tmp_path / "coarse", tmp_path / "detail"

    def args(config, steps):
        return [a.replace(str(CONFIG), str(ROOT / "configs" / config)) for a in
                _args(data, steps)]

    pre = train_and_evaluate(load_config(args("synthetic_pretrain.py", 2) + [
        "--config.data.identities_per_batch=2"]), pre_dir, progress=False)
    assert pre["step"] == 2 and {"landmark", "eye", "reg"} <= set(pre)
    assert not {"pixel", "mask", "scl", "shape_consistency"} & set(pre)
    pretrained = restore_state(pre_dir, None)
    # Another seed: from scratch this run's E_c would start elsewhere. Another learning-rate
    # schedule: the pretraining's optimiser state (constant) is not this run's (cosine).
    out = train_and_evaluate(load_config(_args(data, 2) + [
        f"--config.train.init_from={pre_dir}", "--config.train.seed=1",
        "--config.optim.schedule=cosine"]), coarse_dir, progress=False)
    assert out["step"] == 2 and {"pixel", "shape_consistency"} <= set(out)
    coarse = restore_state(coarse_dir, None)
    # Started from the pretrained E_c: two Adam steps move each weight by at most ~2 lr.
    moved = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(coarse["params"]["coarse"]),
                                                 jax.tree.leaves(pretrained["params"]["coarse"]),
                                                 strict=True)]
    assert max(moved) < 3e-4
    vgg = _planted_vgg19(tmp_path / "vgg19.npz")
    out = train_and_evaluate(load_config(args("synthetic_detail.py", 1) + [
        f"--config.train.init_from={coarse_dir}", "--config.loss.mrf=5e-2",
        f"--config.perceptual.vgg19_path={vgg}"]), detail_dir, progress=False)
    assert out["step"] == 1 and out["finite"] == 1.0 and np.isfinite(out["mrf"])
    assert out["mrf"] > 0
    detail = restore_state(detail_dir, None)
    jax.tree.map(np.testing.assert_array_equal, detail["params"]["coarse"],
                 coarse["params"]["coarse"])
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), detail["params"]["detail_decoder"],
                           coarse["params"]["detail_decoder"])
    assert any(jax.tree.leaves(changed))


def test_detail_stage_without_vgg19_weights_stops_before_training(data, tmp_path, capsys):
    """ID-MRF is the paper's main detail loss: without the VGG19 file the run names it and
    stops before building anything."""
    detail = ROOT / "configs" / "detail.py"
    code = main(["train", f"--config={detail}", f"--config.data.dir={data}",
                 "--config.train.init_from=nowhere", f"--workdir={tmp_path / 'w'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "loss.mrf > 0 (ID-MRF) needs perceptual.vgg19_path" in err
    assert "vgg19-dcbb9e9d.pth" in err and not (tmp_path / "w" / "checkpoints").exists()


def test_the_bar_times_the_steps_after_the_compiling_one(capsys):
    """After the first step the bar's clock restarts: its rate and ETA exclude the compile
    time, it counts on from the step reached, and the compile time is printed."""
    import io

    from tqdm import tqdm

    from jaxface.train.loop import after_compiling

    bar = tqdm(initial=3, total=10, desc="train (coarse): compiling", file=io.StringIO())
    bar.start_t -= 300.0                  # "compiling" took five minutes
    after_compiling(bar, {"loss": jax.numpy.ones(())}, 4, "train (coarse)",
                    time.perf_counter() - 300.0)
    assert "took 300" in capsys.readouterr().out
    assert bar.n == bar.initial == 4 and bar.desc == "train (coarse)"
    bar.update(1)
    stats = bar.format_dict
    assert stats["elapsed"] < 5.0 and stats["n"] - stats["initial"] == 1
    bar.close()


def test_the_train_step_and_the_eval_are_traced_once(tmp_path, monkeypatch):
    """The state before the first step is placed as the step returns it: the second step
    reuses the first one's program, and the evals before and after training share theirs
    (each retrace was a second compilation: ~25 s more start-up on the README's command).
    Counted by the Python bodies that run only while a program is traced."""
    from jaxface.train import preview, step

    traced = {"objective": 0, "eval": 0, "preview": 0}

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            traced[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setitem(step.OBJECTIVES, "coarse",
                        counting("objective", step.OBJECTIVES["coarse"]))
    monkeypatch.setattr(step, "evaluate_batch", counting("eval", step.evaluate_batch))
    monkeypatch.setattr(preview, "frame_batch", counting("preview", preview.frame_batch))
    data = tmp_path / "data"
    generate(data, identities=2, per_identity=2, seed=0, progress=False, val_identities=1,
             settings=SynthSettings(image_size=64, uv_size=64, occluder_prob=0.0))
    args = _args(data, 3) + ["--config.train.eval_every=2", "--config.train.checkpoint_every=3"]
    train_and_evaluate(load_config(args), tmp_path / "run", progress=False)
    evals = [r for r in _log_rows(tmp_path / "run") if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 3]
    assert traced == {"objective": 1, "eval": 1, "preview": 1}

