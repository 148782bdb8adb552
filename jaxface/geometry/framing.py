"""Framing face images: DECA's landmark crop and plain resizing, moving image, mask and
landmarks together (jit-able, batched).

DECA frames a face by its 68 landmarks: a square centred on the landmarks' box, its side a
multiple of the box's mean extent ((width + height) / 2): 1.4-1.8 at random in training,
1.25 x 1.1 = 1.375 at test time. Landmarks are pixel coordinates (column, row) with pixel
centres at +0.5.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# DECA's crops, as multiples of the landmark box's mean extent.
TRAIN_CROP_SCALES = (1.4, 1.8)
TEST_CROP_SCALE = 1.25 * 1.1


def crop_box(landmarks_BxLx2: jax.Array, scale_B: jax.Array,
             shift_Bx2: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """DECA's square crop of each face -> (centre (B, 2), side (B,)) in pixels: centred on
    the landmarks' box (moved by ``shift`` x the mean extent), ``scale`` x its mean extent."""
    lo, hi = jnp.min(landmarks_BxLx2, 1), jnp.max(landmarks_BxLx2, 1)
    extent = jnp.sum(hi - lo, -1) / 2.0
    centre = (lo + hi) / 2.0
    if shift_Bx2 is not None:
        centre = centre + shift_Bx2 * extent[:, None]
    return centre, scale_B * extent


def _warp(image_HxWxC: jax.Array, out_size: int, zoom: jax.Array,
          translation_2: jax.Array) -> jax.Array:
    """Content at input pixel coordinate x moves to zoom x + translation (linear filter,
    antialiased when shrinking); outside the input is 0."""
    return jax.image.scale_and_translate(
        image_HxWxC, (out_size, out_size, image_HxWxC.shape[-1]), (0, 1),
        jnp.stack([zoom, zoom]), jnp.stack([translation_2[1], translation_2[0]]), "linear",
        antialias=True)


def crop_faces(image_BxHxWxC: jax.Array, landmarks_BxLx2: jax.Array, mask_BxHxWx1: jax.Array,
               out_size: int, scale_B: jax.Array, shift_Bx2: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The :func:`crop_box` crops resized to ``out_size`` -> (image, landmarks, mask); the
    mask is warped bilinearly and thresholded at 0.5, outside the photo is 0."""
    centre, side = crop_box(landmarks_BxLx2, scale_B, shift_Bx2)
    zoom = out_size / side                                          # output px per input px
    translation = -(centre - side[:, None] / 2.0) * zoom[:, None]
    warp = jax.vmap(_warp, in_axes=(0, None, 0, 0))
    image = warp(image_BxHxWxC, out_size, zoom, translation)
    mask = warp(mask_BxHxWx1.astype(image.dtype), out_size, zoom, translation) > 0.5
    landmarks = landmarks_BxLx2 * zoom[:, None, None] + translation[:, None, :]
    return image, landmarks, mask.astype(mask_BxHxWx1.dtype)


def frame_batch(batch: dict, out_size: int, scale: float = TEST_CROP_SCALE) -> dict:
    """A batch's faces cropped at a fixed ``scale`` (default DECA's test crop) and resized to
    ``out_size``; other keys unchanged. jit-able."""
    n = batch["image"].shape[0]
    image, landmarks, mask = crop_faces(batch["image"], batch["landmarks"], batch["mask"],
                                        out_size, jnp.full((n,), scale, jnp.float32))
    return batch | {"image": image, "landmarks": landmarks, "mask": mask}


def resize_batch(batch: dict, size: int) -> dict:
    """The batch's images, masks and landmarks at ``size`` x ``size`` (already framed crops,
    e.g. ``jaxface prepare``'s, at the network's input size); unchanged when already that
    size. jit-able."""
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
