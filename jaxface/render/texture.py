"""nvdiffrast's ``texture`` contract in pure JAX: bilinear or nearest texture lookups.

Texel (i, j) of a (Ht, Wt) texture sits at uv ((j + 0.5) / Wt, (i + 0.5) / Ht): uv is
addressed at (u Wt - 0.5, v Ht - 0.5) and row 0 is v = 0, so uv (0, 0) is the bottom-left
corner when row 0 is drawn at the bottom. (jaxface's own UV images keep row 0 at v = 1, as DECA
samples them: flip them with ``tex[:, ::-1]`` before this call.) Gradients flow to the texture
and, for ``linear``, to the uv coordinates. Mip-mapping is not implemented.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.render.backend import use_nvdiffrast

FILTER_MODES = ("linear", "nearest")
BOUNDARY_MODES = ("wrap", "clamp", "zero")


def _fetch(tex_BxHtxWtxC, row, col, boundary_mode):
    """Texels at integer (row, col) of shape (B, H, W), with the boundary rule applied."""
    ht, wt = tex_BxHtxWtxC.shape[1:3]
    inside = (row >= 0) & (row < ht) & (col >= 0) & (col < wt)
    if boundary_mode == "wrap":
        row, col = jnp.mod(row, ht), jnp.mod(col, wt)
    else:
        row, col = jnp.clip(row, 0, ht - 1), jnp.clip(col, 0, wt - 1)
    texels = jax.vmap(lambda t, r, c: t[r, c])(tex_BxHtxWtxC, row, col)
    if boundary_mode == "zero":
        texels = jnp.where(inside[..., None], texels, 0.0)
    return texels


def texture(tex: jax.Array, uv: jax.Array, filter_mode: str = "linear",
            boundary_mode: str = "wrap", backend: str = "auto") -> jax.Array:
    """Samples ``tex`` (B, Ht, Wt, C) (or (1, ...) shared) at ``uv`` (B, H, W, 2) -> (B, H, W, C).

    boundary_mode: "wrap" (repeat), "clamp" (edge texels) or "zero" (outside is 0).
    backend: "auto", "jax" or "nvdiffrast" (see :mod:`jaxface.render.backend`).
    """
    if filter_mode not in FILTER_MODES:
        raise ValueError(f"filter_mode must be one of {FILTER_MODES}, got {filter_mode!r}")
    if boundary_mode not in BOUNDARY_MODES:
        raise ValueError(f"boundary_mode must be one of {BOUNDARY_MODES}, got {boundary_mode!r}")
    if use_nvdiffrast(backend, tex.dtype):
        from jaxface.render.nvdr_ffi import ops

        return ops.texture(tex, uv, filter_mode, boundary_mode)
    tex = jnp.broadcast_to(tex, (uv.shape[0],) + tex.shape[1:])
    ht, wt = tex.shape[1:3]
    x = uv[..., 0] * wt - 0.5
    y = uv[..., 1] * ht - 0.5
    if filter_mode == "nearest":
        return _fetch(tex, jnp.floor(y + 0.5).astype(jnp.int32),
                      jnp.floor(x + 0.5).astype(jnp.int32), boundary_mode)
    x0, y0 = jnp.floor(x), jnp.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    c0, r0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    t00 = _fetch(tex, r0, c0, boundary_mode)
    t01 = _fetch(tex, r0, c0 + 1, boundary_mode)
    t10 = _fetch(tex, r0 + 1, c0, boundary_mode)
    t11 = _fetch(tex, r0 + 1, c0 + 1, boundary_mode)
    return ((1 - fy) * ((1 - fx) * t00 + fx * t01) + fy * ((1 - fx) * t10 + fx * t11))
