"""The prior information module's inputs: landmark heatmaps and the face mask next to the image.

The network sees ``concat([image, landmark channel(s), mask])`` (PIM on) or the image alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

N_LANDMARKS = 68


def prior_channels(use_priors: bool, landmark_channels: int) -> int:
    """Channels the priors add to the RGB input: landmark channel(s) + one mask channel."""
    if not use_priors:
        return 0
    if landmark_channels not in (1, N_LANDMARKS):
        raise ValueError(f"model.landmark_channels must be 1 (all landmarks in one heatmap) or "
                         f"{N_LANDMARKS} (one per landmark), got {landmark_channels}")
    return landmark_channels + 1


def landmark_heatmaps(landmarks_BxLx2: jax.Array, height: int, width: int, sigma: float,
                      per_landmark: bool) -> jax.Array:
    """Landmarks drawn as Gaussians exp(-d^2 / (2 sigma^2)) (peak 1) -> (B, H, W, L) with
    ``per_landmark``, else their maximum (B, H, W, 1).

    Landmarks are pixel coordinates (column, row) with pixel centres at +0.5, as
    :func:`~jaxface.render.project_landmarks` returns them; sigma is in pixels.
    """
    cols = jnp.arange(width, dtype=landmarks_BxLx2.dtype) + 0.5
    rows = jnp.arange(height, dtype=landmarks_BxLx2.dtype) + 0.5
    dx = cols[None, None, :, None] - landmarks_BxLx2[:, None, None, :, 0]
    dy = rows[None, :, None, None] - landmarks_BxLx2[:, None, None, :, 1]
    maps = jnp.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma))    # (B, H, W, L)
    return maps if per_landmark else jnp.max(maps, -1, keepdims=True)


def network_input(image_BxHxWx3: jax.Array, landmarks_BxLx2: jax.Array | None,
                  mask_BxHxWx1: jax.Array | None, use_priors: bool, landmark_channels: int,
                  sigma: float) -> jax.Array:
    """The encoder's input: the image, with the landmark heatmap(s) and mask when priors are
    on -> (B, H, W, 3 + prior_channels)."""
    if not use_priors:
        return image_BxHxWx3
    if landmarks_BxLx2 is None or mask_BxHxWx1 is None:
        raise ValueError("model.use_priors is on: the batch needs 'landmarks' and 'mask'")
    prior_channels(use_priors, landmark_channels)
    h, w = image_BxHxWx3.shape[1:3]
    heat = landmark_heatmaps(landmarks_BxLx2.astype(image_BxHxWx3.dtype), h, w, sigma,
                             per_landmark=landmark_channels > 1)
    return jnp.concatenate([image_BxHxWx3, heat, mask_BxHxWx1.astype(image_BxHxWx3.dtype)], -1)
