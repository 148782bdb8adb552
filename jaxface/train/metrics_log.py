"""Where a run's numbers go: ``metrics.jsonl`` (one JSON object per logged step or eval) and
TensorBoard event files (``<workdir>/tensorboard``: scalars and preview image grids)."""

from __future__ import annotations

import json
import pathlib

import numpy as np


class MetricsLog:
    def __init__(self, workdir: str | pathlib.Path, enabled: bool = True):
        self.enabled = enabled
        self.jsonl = None
        self.writer = None
        if enabled:
            from tensorboardX import SummaryWriter

            workdir = pathlib.Path(workdir)
            self.jsonl = open(workdir / "metrics.jsonl", "a")
            self.writer = SummaryWriter(str(workdir / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, "kind": prefix, **values}) + "\n")
        self.jsonl.flush()
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def image(self, step: int, name: str, rows_BxHxWx3: np.ndarray) -> None:
        """Logs a batch of preview rows stacked into one picture (HWC, [0, 1])."""
        if not self.enabled:
            return
        grid = np.concatenate(list(np.asarray(rows_BxHxWx3)), axis=0)
        self.writer.add_image(name, np.clip(grid, 0.0, 1.0), step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.writer.close()
