"""The training loop's periodic parts, each a small object with its own state (in the spirit of
``clu.periodic_actions``), so the loop in :mod:`jaxface.train.loop` reads as what happens when
and each part is testable alone:

- :class:`StopOnSignal`: SIGTERM / SIGINT ask the loop to stop at the next step boundary;
- :class:`StepMetrics`: reads a step's metrics one step late (so dispatch runs ahead), logs
  them every ``log_every`` steps with the images/s, and stops a run of non-finite steps;
- :class:`Evaluation`: the eval split's errors, the preview picture and the best checkpoint.
"""

from __future__ import annotations

import signal
import time

import jax
import jax.numpy as jnp
import numpy as np


class NonFiniteLossError(FloatingPointError):
    """Too many steps in a row produced NaN/inf; the last good checkpoint is kept."""


class StopOnSignal:
    """A context manager: while active, SIGTERM and SIGINT set :attr:`signal` (the signal's
    name) instead of killing the process, so the loop can save a checkpoint and stop; a
    second Ctrl-C interrupts at once. The previous handlers come back on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal: str | None = None
        self._previous = {}

    def _request(self, signum, frame):
        self.signal = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> StopOnSignal:
        self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class StepMetrics:
    """Train-step metrics, read one step late.

    :meth:`push` hands over step ``n``'s device metrics and reads step ``n - 1``'s (which
    has finished by then, so the host never waits for the device); :meth:`drain` reads the
    pending one now (before an eval, a checkpoint or the end). Every ``log_every`` steps the
    metrics go to ``log`` with the images/s since the last log (:meth:`restart_clock` after
    an eval, so the rate counts training only) and ``on_log`` gets a short summary (the
    progress bar's). ``max_nonfinite`` steps in a row whose ``finite`` metric is 0 raise
    :class:`NonFiniteLossError` naming ``latest_checkpoint()``.
    """

    SHOWN = ("loss", "landmark", "pixel", "detail_photometric")

    def __init__(self, log, log_every: int, last_step: int, images_per_step: int,
                 max_nonfinite: int, latest_checkpoint, on_log=lambda shown: None):
        self.log, self.log_every, self.last_step = log, log_every, last_step
        self.images_per_step, self.max_nonfinite = images_per_step, max_nonfinite
        self.latest_checkpoint, self.on_log = latest_checkpoint, on_log
        self.last: dict[str, float] = {}
        self.nonfinite_in_a_row = 0
        self._pending = None
        self._clock = time.perf_counter()

    def restart_clock(self) -> None:
        self._clock = time.perf_counter()

    def push(self, step: int, device_metrics) -> None:
        self.drain()
        self._pending = (step, device_metrics)

    def drain(self) -> None:
        if self._pending is None:
            return
        step, device_metrics = self._pending
        self._pending = None
        metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
        self.last = metrics
        if step % self.log_every == 0 or step == self.last_step:
            now = time.perf_counter()
            rate = self.images_per_step * self.log_every / max(now - self._clock, 1e-9)
            self._clock = now
            self.log.scalars(step, metrics | {"images_per_second": rate})
            self.on_log({k: f"{metrics[k]:.4f}" for k in self.SHOWN if k in metrics}
                        | {"img/s": f"{rate:.1f}"})
        self._check_finite(step, metrics)

    def _check_finite(self, step: int, metrics: dict) -> None:
        if metrics["finite"] >= 1.0:
            self.nonfinite_in_a_row = 0
            return
        self.nonfinite_in_a_row += 1
        print(f"jaxface train: step {step}: loss {metrics['loss']}, grad norm "
              f"{metrics['grad_norm']}; update skipped ({self.nonfinite_in_a_row} in a row)")
        if self.nonfinite_in_a_row >= self.max_nonfinite:
            raise NonFiniteLossError(
                f"{self.nonfinite_in_a_row} steps in a row with a non-finite loss or gradient "
                f"(last at step {step}); the last checkpoint is kept (step "
                f"{self.latest_checkpoint()}); lower optim.lr or check the data")


def mean_errors(eval_step, params, stats, dataset) -> dict[str, float]:
    """Mean per-image errors of ``eval_step`` over one pass of ``dataset``."""
    totals, count = {}, 0
    for batch in dataset:
        out = jax.device_get(eval_step(params, stats, {k: jnp.asarray(v)
                                                        for k, v in batch.items()}))
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + float(np.sum(v))
        count += len(next(iter(out.values())))
    return {k: v / count for k, v in totals.items()}


class Evaluation:
    """The eval split's mean errors, logged with the preview picture of its first
    ``preview_images`` images; the best checkpoint saved when ``best_metric`` improves. A
    run without an eval split evaluates nothing."""

    def __init__(self, eval_step, preview, eval_data, log, checkpoints, best_metric: str,
                 preview_columns, preview_images: int):
        self.eval_step, self.preview, self.eval_data = eval_step, preview, eval_data
        self.log, self.checkpoints, self.best_metric = log, checkpoints, best_metric
        self.preview_columns = preview_columns
        self.preview_batch = None if eval_data is None else {
            k: jnp.asarray(v[:preview_images]) for k, v in eval_data[0].items()}
        self.last: dict[str, float] = {}

    def __call__(self, step: int, state) -> dict[str, float]:
        if self.eval_data is None:
            return self.last
        self.last = mean_errors(self.eval_step, state.params, state.batch_stats, self.eval_data)
        self.log.scalars(step, self.last, "eval")
        picture = self.preview(state.params, state.batch_stats, self.preview_batch)
        self.log.image(step, "preview", jax.device_get(picture), self.preview_columns)
        if self.checkpoints.best is not None and self.best_metric in self.last:
            self.checkpoints.save_best(step, state, self.last)
        print(f"jaxface train: eval at step {step}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in self.last.items()))
        return self.last
