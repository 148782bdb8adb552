"""Drawing on images for previews and visualisations (jit-able, no Python loop over pixels)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def draw_points(image_BxHxWx3: jax.Array, points_BxNx2: jax.Array,
                colour: tuple[float, float, float], radius: float = 1.5) -> jax.Array:
    """The images with a filled disc of ``radius`` pixels painted at each point ((column,
    row) pixel coordinates, pixel centres at +0.5)."""
    h, w = image_BxHxWx3.shape[1:3]
    cols = jnp.arange(w, dtype=jnp.float32) + 0.5
    rows = jnp.arange(h, dtype=jnp.float32) + 0.5
    dx = cols[None, None, :, None] - points_BxNx2[:, None, None, :, 0]
    dy = rows[None, :, None, None] - points_BxNx2[:, None, None, :, 1]
    hit = jnp.any(dx * dx + dy * dy <= radius * radius, axis=-1)[..., None]
    return jnp.where(hit, jnp.asarray(colour, image_BxHxWx3.dtype), image_BxHxWx3)
