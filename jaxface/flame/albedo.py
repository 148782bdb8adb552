"""Linear albedo models in FLAME's UV space: BFM converted to FLAME (``MU``, ``PC``), FLAME's
own texture space (``mean``, ``tex_dir``) or the synthetic head's (``albedo_mean``,
``albedo_basis`` in a ``jaxface flame-asset`` file).

Texture images are (H, W, 3) RGB with row 0 at v = 1 (the top), the way DECA samples them.
"""

from __future__ import annotations

import os
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.assets import AssetError, require_file


class AlbedoModel(NamedTuple):
    """mean (H, W, 3) and basis (H, W, 3, K): albedo(alpha) = mean + basis . alpha."""

    mean: jax.Array
    basis: jax.Array


def albedo_map(model: AlbedoModel, tex_BxK: jax.Array) -> jax.Array:
    """UV albedo maps A(alpha) -> (B, H, W, 3). K may be fewer than the model's components."""
    basis = model.basis[..., : tex_BxK.shape[-1]]
    return model.mean + jnp.einsum("hwck,bk->bhwc", basis, tex_BxK)


_LAYOUTS = (  # (mean key, basis key, value scale, stored as BGR)
    ("MU", "PC", 1.0, True),
    ("mean", "tex_dir", 1.0 / 255.0, True),
    ("albedo_mean", "albedo_basis", 1.0, False),
)


def load_albedo(path: str | os.PathLike, n_components: int | None = None) -> AlbedoModel:
    """Loads an albedo model from an ``.npz`` in any of the layouts above.

    ``FLAME_albedo_from_BFM.npz`` holds ``MU`` (512*512*3,) and ``PC`` (512*512*3, 199) with
    the channels in BGR order and values in [0, 1]; they are returned as RGB images.
    """
    path = require_file(path, "albedo")
    try:
        data = np.load(path, allow_pickle=False)
        keys = set(data.files)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise AssetError(f"{path}: not a readable .npz file (truncated or corrupt?): {e}") from e
    layout = next((lay for lay in _LAYOUTS if lay[0] in keys and lay[1] in keys), None)
    if layout is None:
        data.close()
        raise AssetError(f"{path}: no albedo found; expected keys ('MU', 'PC') (BFM), "
                         f"('mean', 'tex_dir') (FLAME) or ('albedo_mean', 'albedo_basis'), "
                         f"found {sorted(keys)}")
    mean_key, basis_key, scale, bgr = layout
    with data:
        mean, basis = np.asarray(data[mean_key]), np.asarray(data[basis_key])
    if mean.ndim != 3:  # flat layouts: a square RGB texture
        side = int(round(np.sqrt(mean.size / 3)))
        if side * side * 3 != mean.size:
            raise AssetError(f"{path}: key {mean_key!r} has {mean.size} values, expected "
                             "H*W*3 for a square texture")
        mean = mean.reshape(side, side, 3)
        basis = basis.reshape(side, side, 3, -1) if basis.size % mean.size == 0 else basis
    if basis.shape[:3] != mean.shape:
        raise AssetError(f"{path}: key {basis_key!r} has shape {basis.shape}, expected "
                         f"{mean.shape + ('K',)} to match {mean_key!r}")
    k = basis.shape[-1] if n_components is None else n_components
    if not 0 < k <= basis.shape[-1]:
        raise AssetError(f"{path}: asked for {k} albedo components, the file has "
                         f"{basis.shape[-1]}")
    if bgr:
        mean, basis = mean[..., ::-1], basis[..., ::-1, :]
    return AlbedoModel(mean=jnp.asarray(mean * scale, jnp.float32),
                       basis=jnp.asarray(basis[..., :k] * scale, jnp.float32))
