"""DECA's training augmentation, jit-able, moving image, landmarks and mask together.

Per image: DECA's random crop — a square around the landmarks' box, its side drawn uniformly
in ``scale_range`` x the box's mean extent (DECA: 1.4-1.8, no shift, no colour change) —
resized to the network's input. Optionally (off by default, not DECA's) a shift of the crop
centre by up to ``shift_jitter`` x the extent and a colour jitter (brightness, contrast,
saturation up to +-``colour_jitter``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.geometry.framing import TRAIN_CROP_SCALES, crop_faces


def augment(key: jax.Array, image_BxHxWx3: jax.Array, landmarks_BxLx2: jax.Array,
            mask_BxHxWx1: jax.Array, out_size: int,
            scale_range: tuple[float, float] = TRAIN_CROP_SCALES, shift_jitter: float = 0.0,
            colour_jitter: float = 0.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """-> (image, landmarks, mask) of random DECA crops at ``out_size``, optionally shifted
    and colour-jittered."""
    b = image_BxHxWx3.shape[0]
    k_scale, k_shift, k_colour = jax.random.split(key, 3)
    scale = jax.random.uniform(k_scale, (b,), minval=scale_range[0], maxval=scale_range[1])
    shift = jax.random.uniform(k_shift, (b, 2), minval=-1.0, maxval=1.0) * shift_jitter
    image, landmarks, mask = crop_faces(image_BxHxWx3, landmarks_BxLx2, mask_BxHxWx1,
                                        out_size, scale, shift)
    if colour_jitter:
        brightness, contrast, saturation = (
            1.0 + jax.random.uniform(k, (b, 1, 1, 1), minval=-colour_jitter,
                                     maxval=colour_jitter)
            for k in jax.random.split(k_colour, 3))
        gray = jnp.mean(image, axis=-1, keepdims=True)
        image = gray + (image - gray) * saturation
        mean = jnp.mean(image, axis=(1, 2, 3), keepdims=True)
        image = jnp.clip(((image - mean) * contrast + mean) * brightness, 0.0, 1.0)
    return image, landmarks, mask
