"""Where a run's numbers go: ``metrics.jsonl`` (one JSON object per logged step or eval),
TensorBoard event files (``<workdir>/tensorboard``: scalars and preview image grids) and the
previews as PNG files (``<workdir>/previews/<name>_<step>.png``, columns labelled)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from jaxface.reconstruction.mesh_io import label_columns, write_png


class MetricsLog:
    def __init__(self, workdir: str | pathlib.Path, enabled: bool = True):
        self.enabled = enabled
        self.jsonl = None
        self.writer = None
        if enabled:
            from tensorboardX import SummaryWriter

            workdir = pathlib.Path(workdir)
            self.previews = workdir / "previews"
            self.jsonl = open(workdir / "metrics.jsonl", "a")
            self.writer = SummaryWriter(str(workdir / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, "kind": prefix, **values}) + "\n")
        self.jsonl.flush()
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def image(self, step: int, name: str, rows_BxHxWx3: np.ndarray,
              labels: list[str] | None = None) -> pathlib.Path | None:
        """Logs a batch of preview rows stacked into one picture (HWC, [0, 1]), to
        TensorBoard and as ``previews/<name>_<step>.png`` (with ``labels`` over the
        columns); returns the PNG's path."""
        if not self.enabled:
            return None
        grid = np.clip(np.concatenate(list(np.asarray(rows_BxHxWx3)), axis=0), 0.0, 1.0)
        self.writer.add_image(name, grid, step, dataformats="HWC")
        self.writer.flush()
        self.previews.mkdir(exist_ok=True)
        path = self.previews / f"{name}_{step:06d}.png"
        write_png(path, grid if labels is None else label_columns(grid, labels))
        return path

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.writer.close()
