"""DECA-style light augmentation, jit-able, applied consistently to image, landmarks and mask.

Per image: a zoom about the crop centre (scale in [1 - s, 1 + s]) and a shift (up to ``t`` of
the crop side) — a jitter of the face crop — and a colour jitter (brightness, contrast,
saturation). Geometry moves the image, the mask (bilinear, then thresholded) and the
landmarks together: a landmark stays on the image content it marked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _warp(image_HxWxC: jax.Array, scale: jax.Array, shift_2: jax.Array) -> jax.Array:
    """The image with its content moved from x to scale x + shift (x = (column, row) in
    continuous pixel coordinates), bilinear; outside the input is 0."""
    return jax.image.scale_and_translate(
        image_HxWxC, image_HxWxC.shape, (0, 1), jnp.stack([scale, scale]),
        jnp.stack([shift_2[1], shift_2[0]]), "linear", antialias=False)


def augment(key: jax.Array, image_BxHxWx3: jax.Array, landmarks_BxLx2: jax.Array,
            mask_BxHxWx1: jax.Array, scale_jitter: float = 0.1, shift_jitter: float = 0.05,
            colour_jitter: float = 0.1) -> tuple[jax.Array, jax.Array, jax.Array]:
    """-> (image, landmarks, mask) with a random crop jitter and colour jitter per image.

    A content point at pixel coordinate x moves to scale (x - c) + c + shift, c the image
    centre; landmarks (column, row) follow the same map.
    """
    b, h, w, _ = image_BxHxWx3.shape
    k_scale, k_shift, k_colour = jax.random.split(key, 3)
    scale = 1.0 + jax.random.uniform(k_scale, (b,), minval=-scale_jitter, maxval=scale_jitter)
    shift = jax.random.uniform(k_shift, (b, 2), minval=-shift_jitter,
                               maxval=shift_jitter) * jnp.asarray([w, h], jnp.float32)
    centre = jnp.asarray([w / 2, h / 2], jnp.float32)
    # scale_and_translate maps input coordinate x to output scale x + translation.
    translation = centre * (1.0 - scale[:, None]) + shift
    image = jax.vmap(_warp)(image_BxHxWx3, scale, translation)
    mask = (jax.vmap(_warp)(mask_BxHxWx1.astype(jnp.float32), scale, translation) > 0.5)
    landmarks = landmarks_BxLx2 * scale[:, None, None] + translation[:, None, :]
    brightness, contrast, saturation = (
        1.0 + jax.random.uniform(k, (b, 1, 1, 1), minval=-colour_jitter, maxval=colour_jitter)
        for k in jax.random.split(k_colour, 3))
    gray = jnp.mean(image, axis=-1, keepdims=True)
    image = gray + (image - gray) * saturation
    mean = jnp.mean(image, axis=(1, 2, 3), keepdims=True)
    image = jnp.clip(((image - mean) * contrast + mean) * brightness, 0.0, 1.0)
    return image, landmarks, mask.astype(mask_BxHxWx1.dtype)


def resize_batch(batch: dict, size: int) -> dict:
    """The batch's images, masks and landmarks at ``size`` x ``size`` (a dataset written at
    224 trains a 128-pixel model); unchanged when already that size. jit-able."""
    h, w = batch["image"].shape[1:3]
    if (h, w) == (size, size):
        return batch
    b = batch["image"].shape[0]
    out = dict(batch)
    out["image"] = jax.image.resize(batch["image"], (b, size, size, 3), "linear")
    mask = jax.image.resize(batch["mask"].astype(jnp.float32), (b, size, size, 1), "linear")
    out["mask"] = (mask > 0.5).astype(batch["mask"].dtype)
    out["landmarks"] = batch["landmarks"] * jnp.asarray([size / w, size / h],
                                                        batch["landmarks"].dtype)
    return out
