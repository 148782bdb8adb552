"""Landmarks embedded in the mesh by barycentric coordinates, and FLAME's dynamic contour."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.flame.model import N_CONTOUR_BINS
from jaxface.flame.rotation import yaw_degrees

_MAX_YAW_BIN = (N_CONTOUR_BINS - 1) // 2  # 39 degrees


def barycentric_points(verts_BxVx3: jax.Array, faces_Fx3: jax.Array, face_idx_BxL: jax.Array,
                       bary_BxLx3: jax.Array) -> jax.Array:
    """Points on triangles ``face_idx`` at barycentric ``bary`` -> (B, L, 3)."""
    corners_BxLx3 = faces_Fx3[face_idx_BxL]
    tri_BxLx3x3 = jax.vmap(lambda v, c: v[c])(verts_BxVx3, corners_BxLx3)
    return jnp.einsum("blkc,blk->blc", tri_BxLx3x3, bary_BxLx3)


def contour_bin(rot_neck_chain_BxKx3x3: jax.Array) -> jax.Array:
    """Index into ``dynamic_lmk_*`` from the rotations of the neck and its ancestors.

    ``rot_neck_chain[:, 0]`` is the neck, then its parent, up to the root. The head's rotation is
    root @ ... @ neck; its yaw in whole degrees, clamped to +-39, is stored DECA's way: bins
    0..39 hold yaw 0..39 and bins 40..78 hold yaw -1..-39 (bin = 39 - yaw). smplx's FLAME
    layer bins -yaw instead, so its ``flame_dynamic_embedding.npy`` is stored in the mirrored
    order; DECA's ``landmark_embedding.npy`` matches this function.
    """
    head = rot_neck_chain_BxKx3x3[:, 0]
    for k in range(1, rot_neck_chain_BxKx3x3.shape[1]):
        head = rot_neck_chain_BxKx3x3[:, k] @ head
    yaw = jnp.round(yaw_degrees(jax.lax.stop_gradient(head)))
    yaw = jnp.clip(yaw, -_MAX_YAW_BIN, _MAX_YAW_BIN).astype(jnp.int32)
    return jnp.where(yaw < 0, _MAX_YAW_BIN - yaw, yaw)
