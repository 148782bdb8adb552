"""Checkpoint durability: one save in flight (a save waits for the previous one), and what a
kill leaves half-written — during a save or during the best checkpoint's rotation — removed
at the next start, the newest complete checkpoint restored."""

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from jaxface.train.checkpoint import (
    COMPLETE_MARKER,
    Checkpoints,
    incomplete_checkpoints,
    restore_state,
)
from jaxface.train.step import TrainState

SAVER = textwrap.dedent("""
    import sys, numpy as np
    from jaxface.train.checkpoint import Checkpoints
    from jaxface.train.step import TrainState
    ckpt = Checkpoints(sys.argv[1], keep=2, best_metric="err", clean=False)
    for step in range(1, 1000):
        w = np.full((2_000_000,), step, np.float32)
        state = TrainState({"w": w}, {"m": w[:3]}, {"v": w}, np.array(step, np.int32),
                           np.zeros(2, np.uint32))
        ckpt.save(step, state)
        ckpt.save_best(step, state, {"err": 1.0 / step})   # rotates best/ every step
        print(step, flush=True)
""")


def _state(step):
    w = np.full((2_000_000,), step, np.float32)
    return TrainState({"w": w}, {"m": w[:3]}, {"v": w}, np.array(step, np.int32),
                      np.zeros(2, np.uint32))


def test_a_save_waits_for_the_previous_one(tmp_path):
    ckpt = Checkpoints(tmp_path, keep=3)
    ckpt.save(1, _state(1))
    ckpt.save(2, _state(2))
    assert 1 in ckpt.complete_steps()   # complete before the next save started
    ckpt.wait()
    assert ckpt.complete_steps() == [1, 2]
    ckpt.close()


@pytest.mark.parametrize("kill_after_s", [0.3, 0.9, 1.7])
def test_a_kill_during_saves_and_rotations_leaves_a_restorable_run(kill_after_s, tmp_path,
                                                                   capsys):
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "1"   # started saving
    time.sleep(kill_after_s)
    proc.kill()
    proc.wait()
    left = incomplete_checkpoints(tmp_path / "checkpoints") + incomplete_checkpoints(
        tmp_path / "best")
    ckpt = Checkpoints(tmp_path, keep=2, best_metric="err")
    out = capsys.readouterr().out
    print("left by the kill:", [p.name for p in left])
    if left:
        assert out.count("incomplete checkpoint(s)") == 1
        assert all(p.name in out for p in left)
    assert not incomplete_checkpoints(tmp_path / "checkpoints")
    assert not incomplete_checkpoints(tmp_path / "best")
    step = ckpt.latest_step()
    if step is not None:   # the newest complete checkpoint holds what was saved at its step
        state, _ = ckpt.restore(_state(0))
        assert int(state.step) == step and np.all(np.asarray(state.params["w"]) == step)
    ckpt.close()


def test_half_written_entries_are_removed_once(tmp_path, capsys):
    ckpt = Checkpoints(tmp_path, keep=3)
    ckpt.save(1, _state(1))
    ckpt.wait()
    ckpt.close()
    (tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)
    (tmp_path / "best" / "0" / "state").mkdir(parents=True)   # no completion marker
    assert (tmp_path / "checkpoints" / "1" / COMPLETE_MARKER).exists()
    ckpt = Checkpoints(tmp_path, keep=3)
    out = capsys.readouterr().out
    assert "removed 2 incomplete checkpoint(s)" in out
    assert ckpt.latest_step() == 1 and not (tmp_path / "best" / "0").exists()
    ckpt.close()
    Checkpoints(tmp_path, keep=3).close()
    assert "incomplete" not in capsys.readouterr().out


def test_the_best_keeps_the_inference_variables_only(tmp_path):
    """Not the optimiser's state (twice the parameters) nor the RNG: a third of a
    checkpoint for Adam."""
    w = np.random.default_rng(0).normal(size=500_000).astype(np.float32)  # incompressible
    state = TrainState({"w": w}, {"m": w[:3]}, {"mu": w, "nu": w + 1}, np.array(1, np.int32),
                       np.zeros(2, np.uint32))
    ckpt = Checkpoints(tmp_path, best_metric="err")
    ckpt.save(1, state)
    ckpt.save_best(1, state, {"err": 0.5})
    ckpt.wait()
    ckpt.close()
    best = restore_state(tmp_path, None, "best")
    assert set(best) == {"params", "batch_stats", "step"} and int(best["step"]) == 1
    size = {d: sum(f.stat().st_size for f in (tmp_path / d / "1").rglob("*") if f.is_file())
            for d in ("checkpoints", "best")}
    assert size["best"] < 0.6 * size["checkpoints"], size
