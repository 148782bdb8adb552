"""Checkpoints of a run with orbax, behind one small interface (every orbax call is here).

``<workdir>/checkpoints``: the last ``keep`` states, saved every N steps, at the end and on
SIGTERM / Ctrl-C, each with the data pipeline's position (JSON). ``<workdir>/best``: the one
state with the best validation metric so far. orbax writes to a temporary name and renames,
so a run killed while saving (even by SIGKILL) leaves the previous checkpoint intact; saves
are asynchronous (the arrays are copied to the host before ``save`` returns, the files are
written in the background) where orbax supports it.
"""

from __future__ import annotations

import os
import pathlib

import jax
import orbax.checkpoint as ocp


def _target(state_like):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)


class Checkpoints:
    def __init__(self, workdir: str | os.PathLike, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "min", async_save: bool = True):
        root = pathlib.Path(workdir).resolve()
        self.manager = ocp.CheckpointManager(
            root / "checkpoints", options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, enable_async_checkpointing=async_save))
        self.best = None
        if best_metric is not None:
            self.best = ocp.CheckpointManager(
                root / "best", options=ocp.CheckpointManagerOptions(
                    max_to_keep=1, create=True, best_fn=lambda m: m[best_metric],
                    best_mode=best_mode, enable_async_checkpointing=async_save))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_position: dict | None = None) -> None:
        """Saves ``state`` (a pytree of arrays) and the data pipeline's position."""
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_position or {"step": step})))

    def save_best(self, step: int, state, metrics: dict[str, float]) -> None:
        """Offers ``state`` as the best; kept only if its metric beats the stored one."""
        self.best.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)),
                       metrics={k: float(v) for k, v in metrics.items()})

    def restore(self, state_like, step: int | None = None):
        """-> (state, data position) saved at ``step`` (default: the newest), the state
        shaped like ``state_like``."""
        step = self.latest_step() if step is None else step
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_target(state_like)), data=ocp.args.JsonRestore()))
        return out["state"], dict(out["data"])

    def wait(self) -> None:
        self.manager.wait_until_finished()
        if self.best is not None:
            self.best.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
        if self.best is not None:
            self.best.close()


def restore_state(directory: str | os.PathLike, state_like, which: str = "checkpoints",
                  step: int | None = None):
    """The state stored under ``<directory>/<which>`` (the newest, or ``step``), shaped like
    ``state_like`` (None: as stored, nested dicts of arrays) — e.g. a coarse run's params to
    start the detail stage, or the best state for export. Raises FileNotFoundError naming
    the folder when it holds none."""
    path = pathlib.Path(directory).resolve() / which
    manager = ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(create=False)) \
        if path.is_dir() else None
    step = step if step is not None or manager is None else manager.latest_step()
    if manager is None or step is None:
        raise FileNotFoundError(f"no checkpoint in {path}")
    try:
        out = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(
                None if state_like is None else _target(state_like))))
    finally:
        manager.close()
    return out["state"]
