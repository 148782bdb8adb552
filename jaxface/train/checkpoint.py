"""Checkpoints of a run's state with orbax, behind one small interface.

Saved every N steps and at the end (and on SIGTERM / Ctrl-C), the last ``keep`` kept; a run
restarted on the same work dir restores the newest complete checkpoint (orbax writes to a
temporary name and renames, so a run killed while saving leaves the previous one intact).
"""

from __future__ import annotations

import os
import pathlib

import jax
import orbax.checkpoint as ocp


class Checkpoints:
    def __init__(self, workdir: str | os.PathLike, keep: int = 3):
        directory = pathlib.Path(workdir).resolve() / "checkpoints"
        self.manager = ocp.CheckpointManager(
            directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state) -> None:
        self.manager.save(step, args=ocp.args.StandardSave(state))

    def restore(self, state_like, step: int | None = None):
        """The state saved at ``step`` (default: the newest), shaped like ``state_like``."""
        step = self.latest_step() if step is None else step
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
        return self.manager.restore(step, args=ocp.args.StandardRestore(target))

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
