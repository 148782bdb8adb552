"""Checkpoints of a run with orbax, behind one small interface (every orbax call is here).

``<workdir>/checkpoints``: the last ``keep`` states, saved every N steps, at the end and on
SIGTERM / Ctrl-C, each with the data pipeline's position (JSON). ``<workdir>/best``: the one
state with the best validation metric so far. orbax writes to a temporary name and renames,
so a run killed while saving (even by SIGKILL) leaves the previous checkpoint intact, and
what such a kill leaves half-written (a temporary folder, a step folder without its metadata,
e.g. from a kill during the best checkpoint's rotation) is removed at the next start. Saves
are asynchronous (the arrays are copied to the host before ``save`` returns, the files are
written in the background), one at a time: a save first waits for the previous one, so the
newest complete checkpoint is never more than two save intervals old, and one interval old
once the save in flight finishes (its latency is printed by the loop).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import time

import jax
import orbax.checkpoint as ocp


def _target(state_like):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)


COMPLETE_MARKER = "_CHECKPOINT_METADATA"   # orbax writes it when a step's save is finalised
TMP_MARKER = ".orbax-checkpoint-tmp"


def incomplete_checkpoints(folder: pathlib.Path) -> list[pathlib.Path]:
    """The entries of a checkpoint folder that a killed save left: temporary folders, and
    step folders without orbax's completion marker."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and (
        TMP_MARKER in p.name or (p.name.isdigit() and not _finalised(p))))


def has_complete_checkpoint(folder: pathlib.Path) -> bool:
    """Whether a checkpoint folder holds a step whose save was finalised."""
    return folder.is_dir() and any(p.is_dir() and p.name.isdigit() and _finalised(p)
                                   for p in folder.iterdir())


def _finalised(step_dir: pathlib.Path) -> bool:
    return (step_dir / COMPLETE_MARKER).exists()


def remove_incomplete(root: pathlib.Path) -> list[pathlib.Path]:
    """Removes :func:`incomplete_checkpoints` of ``root/checkpoints`` and ``root/best``;
    returns what it removed."""
    removed = incomplete_checkpoints(root / "checkpoints") + incomplete_checkpoints(root / "best")
    for path in removed:
        shutil.rmtree(path)
    return removed


def best_variables(state) -> dict:
    """What ``<workdir>/best`` keeps of a training state: parameters, BatchNorm statistics
    and the step."""
    return {"params": state.params, "batch_stats": state.batch_stats, "step": state.step}


class Checkpoints:
    def __init__(self, workdir: str | os.PathLike, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "min", async_save: bool = True, clean: bool = True):
        """``clean``: first remove what killed saves left half-written (saying so once); only
        the process that writes checkpoints should."""
        root = pathlib.Path(workdir).resolve()
        if clean:
            removed = remove_incomplete(root)
            if removed:
                print(f"jaxface: removed {len(removed)} incomplete checkpoint(s) left by an "
                      f"interrupted save: {', '.join(str(p.relative_to(root)) for p in removed)}")
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

    def save(self, step: int, state, data_position: dict | None = None) -> float:
        """Saves ``state`` (a pytree of arrays) and the data pipeline's position, after the
        previous save has finished (one save in flight); returns the seconds spent waiting
        for it (> 0: saves take longer than the steps between them)."""
        start = time.perf_counter()
        self.manager.wait_until_finished()
        waited = time.perf_counter() - start
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave(data_position or {"step": step})))
        return waited

    def save_best(self, step: int, state, metrics: dict[str, float]) -> None:
        """Offers ``state``'s inference variables (:func:`best_variables`) as the best; kept
        only if its metric beats the stored one. Not the optimiser's state (twice the
        parameters' size) nor the RNG: the best is for export, resuming uses the last."""
        self.best.wait_until_finished()
        self.best.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(best_variables(state))),
            metrics={k: float(v) for k, v in metrics.items()})

    def restore(self, state_like, step: int | None = None):
        """-> (state, data position) saved at ``step`` (default: the newest), the state
        shaped like ``state_like``."""
        step = self.latest_step() if step is None else step
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_target(state_like)), data=ocp.args.JsonRestore()))
        return out["state"], dict(out["data"])

    def complete_steps(self) -> list[int]:
        """The steps whose checkpoint is complete on disk now."""
        folder = pathlib.Path(self.manager.directory)
        return sorted(int(p.name) for p in folder.iterdir()
                      if p.name.isdigit() and (p / COMPLETE_MARKER).exists())

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
