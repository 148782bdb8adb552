"""The NoW benchmark's folder layout (https://now.is.tue.mpg.de, manual download)::

    NoW_Dataset/final_release_version/
      imagepathsvalidation.txt, imagepathstest.txt     <subject>/<challenge>/<image>.jpg
      iphone_pictures/<subject>/<challenge>/<image>.jpg
      scans/<subject>/<name>.obj                       one scan per subject (mm)
      scans_lmks_onlypp/<subject>/<name>.pp            its 7 picked landmarks

Predictions follow the official evaluation code: ``<pred>/<subject>/<challenge>/<image>.obj``
(the neutral mesh) and ``<image>.npy`` (its 7 landmarks, 7 x 3, :data:`NOW_FROM_68`), so the
same folder can be submitted to the official test-split evaluation. Used by the TFDS builder,
``jaxface now-predict`` and ``jaxface evaluate-now``.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

# The 7 NoW landmarks among the 68 iBUG points (DECA's choice).
NOW_FROM_68 = np.array([36, 39, 42, 45, 33, 48, 54])
SPLITS = {"val": "imagepathsvalidation.txt", "test": "imagepathstest.txt"}


class NowLayoutError(FileNotFoundError):
    """The NoW folder is not laid out as the dataset unpacks."""


def now_root(path: str | os.PathLike) -> pathlib.Path:
    """The ``final_release_version`` folder, given it or the folder above it."""
    path = pathlib.Path(path)
    for root in (path, path / "final_release_version"):
        if (root / SPLITS["val"]).is_file() or (root / "scans").is_dir():
            return root
    raise NowLayoutError(f"{path}: not the NoW dataset (expected {SPLITS['val']} and scans/ "
                         "in it or in final_release_version/; download it from "
                         "https://now.is.tue.mpg.de)")


def image_list(root: pathlib.Path, split: str) -> list[str]:
    """The split's images as ``<subject>/<challenge>/<image>.jpg``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    path = root / SPLITS[split]
    if not path.is_file():
        raise NowLayoutError(f"{path}: missing (the {split} split's image list)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
