"""Face masks from landmarks: the landmark hull (jaw line + raised brows), rasterized in JAX.

The offline mask backend for real photos and the synthetic data's face region: the polygon
through the 17 jaw points and the 10 brow points raised towards the hairline covers the face
as a segmentation network's "skin + brows + eyes + nose + mouth" classes roughly do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

JAW = np.arange(0, 17)
BROWS_RIGHT_TO_LEFT = np.arange(26, 16, -1)   # the polygon continues from the jaw's end
BROW_RAISE = 0.35  # brows moved up by this fraction of the brow-to-chin distance


def landmark_hull(landmarks_Bx68x2: jax.Array) -> jax.Array:
    """The face polygon (B, 27, 2) in image coordinates (row down): the jaw from one ear to
    the other, then the brows back, raised towards the hairline."""
    jaw = landmarks_Bx68x2[:, JAW]
    brows = landmarks_Bx68x2[:, BROWS_RIGHT_TO_LEFT]
    chin = landmarks_Bx68x2[:, 8:9]
    brow_centre = jnp.mean(brows, axis=1, keepdims=True)
    up = brow_centre - chin                                           # chin -> brows
    return jnp.concatenate([jaw, brows + BROW_RAISE * up], axis=1)


def polygon_mask(polygon_BxPx2: jax.Array, height: int, width: int) -> jax.Array:
    """Pixels whose centre lies inside the closed polygon (even-odd rule) -> (B, H, W, 1)
    float. Vertices are (column, row) pixel coordinates, pixel centres at +0.5."""
    cols = jnp.arange(width, dtype=polygon_BxPx2.dtype) + 0.5
    rows = jnp.arange(height, dtype=polygon_BxPx2.dtype) + 0.5
    px, py = cols[None, None, :, None], rows[None, :, None, None]
    a = polygon_BxPx2[:, None, None, :, :]                            # (B, 1, 1, P, 2)
    b = jnp.roll(polygon_BxPx2, -1, axis=1)[:, None, None, :, :]
    ax, ay, bx, by = a[..., 0], a[..., 1], b[..., 0], b[..., 1]
    straddles = (ay > py) != (by > py)
    t = (py - ay) / jnp.where(by == ay, 1.0, by - ay)
    crosses = straddles & (px < ax + t * (bx - ax))
    inside = jnp.sum(crosses, axis=-1) % 2 == 1
    return inside[..., None].astype(polygon_BxPx2.dtype)


@jax.jit
def landmark_hull_mask(landmarks_Bx68x2: jax.Array, image_BxHxWxC: jax.Array) -> jax.Array:
    """The landmark-hull face mask (B, H, W, 1) of images with their 68 landmarks."""
    return polygon_mask(landmark_hull(landmarks_Bx68x2), *image_BxHxWxC.shape[1:3])
