"""The training loop's periodic parts alone: the stop request, the one-step-late metrics
reader with its log interval and non-finite guard, and an evaluation without an eval split."""

import os
import signal

import numpy as np
import pytest

from jaxface.train.periodic import (
    Evaluation,
    NonFiniteLossError,
    StepMetrics,
    StopOnSignal,
    mean_errors,
)


class _Log:
    def __init__(self):
        self.scalars_at = []

    def scalars(self, step, metrics, prefix=""):
        self.scalars_at.append((step, dict(metrics)))


def _metrics(loss, finite=1.0):
    return {"loss": np.float32(loss), "finite": np.float32(finite), "grad_norm": np.float32(1)}


def test_a_signal_becomes_a_stop_request_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stop:
        assert stop.signal is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_metrics_are_read_one_step_late_and_logged_every_interval():
    log, shown = _Log(), []
    m = StepMetrics(log, log_every=2, last_step=5, images_per_step=4, max_nonfinite=3,
                    latest_checkpoint=lambda: None, on_log=shown.append)
    m.push(1, _metrics(1.0))
    assert m.last == {}                      # step 1 is read when step 2 is pushed
    m.push(2, _metrics(2.0))
    assert m.last["loss"] == 1.0 and log.scalars_at == []
    m.drain()
    assert m.last["loss"] == 2.0 and [s for s, _ in log.scalars_at] == [2]
    assert log.scalars_at[0][1]["images_per_second"] > 0 and "img/s" in shown[0]
    for step in (3, 4, 5):
        m.push(step, _metrics(step))
    m.drain()
    assert [s for s, _ in log.scalars_at] == [2, 4, 5]    # the interval and the last step


def test_non_finite_steps_in_a_row_stop_with_the_checkpoint_named(capsys):
    m = StepMetrics(_Log(), log_every=100, last_step=100, images_per_step=1, max_nonfinite=2,
                    latest_checkpoint=lambda: 40)
    m.push(1, _metrics(np.nan, 0.0))
    m.push(2, _metrics(1.0))                  # a good step resets the count
    m.push(3, _metrics(np.nan, 0.0))
    m.drain()
    assert m.nonfinite_in_a_row == 1
    m.push(4, _metrics(np.inf, 0.0))
    with pytest.raises(NonFiniteLossError, match=r"2 steps in a row.*last at step 4.*step 40"):
        m.drain()
    assert "update skipped (2 in a row)" in capsys.readouterr().out


def test_mean_errors_weigh_every_image_once():
    def eval_step(params, stats, batch):
        return {"err": batch["x"] * 2}

    data = [{"x": np.array([1.0, 2.0])}, {"x": np.array([3.0])}]
    assert mean_errors(eval_step, None, None, data) == {"err": 4.0}


def test_an_evaluation_without_an_eval_split_does_nothing():
    log = _Log()
    evaluation = Evaluation(None, None, None, log, None, "landmark_px", (), 4)
    assert evaluation(10, None) == {} and log.scalars_at == []
