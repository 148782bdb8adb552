"""External assets: every file jaxface does not generate is loaded from a path the user gives.

Nothing is ever downloaded at run time. A missing or malformed asset raises :class:`AssetError`
whose message names the file, what was expected and where a user obtains it.
"""

from __future__ import annotations

import os
import pathlib

# Where each external asset comes from, quoted in error messages (SPEC section 8).
SOURCES = {
    "flame": "FLAME 2020 `generic_model.pkl` from https://flame.is.tue.mpg.de (free registration "
    "and licence); or run `jaxface flame-asset --out head.npz` for the embedded synthetic head",
    "landmark_embedding": "DECA's `landmark_embedding.npy` (DECA's data download, "
    "github.com/YadiraF/DECA, `fetch_data.sh`)",
    "uv_template": "DECA's `head_template.obj` (FLAME's UV layout: 5023 v, 5118 vt, 9976 f; "
    "DECA's data download)",
    "albedo": "`FLAME_albedo_from_BFM.npz`, made from BFM 2017 with the BFM_to_FLAME converter "
    "(github.com/TimoBolkart/BFM_to_FLAME); or the albedo stored in `jaxface flame-asset`'s npz",
    "uv_face_eye_mask": "DECA's `uv_face_eye_mask.png` (256x256, channel 0; DECA's data "
    "download, github.com/YadiraF/DECA `data/`)",
    "uv_face_mask": "DECA's `uv_face_mask.png` (256x256, channel 0; DECA's data download, "
    "github.com/YadiraF/DECA `data/`)",
    "fixed_displacement": "DECA's `fixed_displacement_256.npy` (256x256; DECA's data download, "
    "github.com/YadiraF/DECA `data/`)",
}


def install_hint(extra: str) -> str:
    """How to install one of jaxface's extras, safe on a CPU-only machine: PyTorch's CPU
    wheel first where the extra needs torch (a plain ``pip install torch`` on Linux pulls
    gigabytes of CUDA libraries)."""
    pip = f"pip install 'jaxface[{extra}]' (from a source checkout: pip install -e '.[{extra}]')"
    if extra in ("torch", "fan"):
        return ("pip install torch --index-url https://download.pytorch.org/whl/cpu (the CPU "
                f"build; skip on a CUDA machine that has torch), then {pip}")
    return pip


class AssetError(ValueError):
    """An external asset is missing, unreadable or not in the expected format."""


def packaged_model_path(file_name: str) -> pathlib.Path:
    """Where the PyPI package ``face-recognition-models`` (the ``face`` extra) installed one
    of dlib's model files (found without importing the package, whose ``__init__`` needs the
    removed ``pkg_resources``)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise AssetError(f"{file_name} not found: install face-recognition-models "
                         f"({install_hint('face')}), or pass its path")
    path = pathlib.Path(spec.origin).parent / "models" / file_name
    if not path.is_file():
        raise AssetError(f"{path} is missing from the face-recognition-models install")
    return path


def require_file(path: str | os.PathLike, kind: str) -> str:
    """Returns ``path`` as a string if it is a readable file, else raises :class:`AssetError`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AssetError(f"{kind} file not found: {path!r}. Get it from: {SOURCES[kind]}.")
    return path
