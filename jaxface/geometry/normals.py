"""Triangle and vertex normals of batched meshes."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def safe_normalize(v: jax.Array, axis: int = -1, eps: float = 1e-20) -> jax.Array:
    """v / |v| with a finite value and gradient at v = 0 (returns 0 there)."""
    sq = jnp.sum(v * v, axis=axis, keepdims=True)
    return v * jax.lax.rsqrt(jnp.maximum(sq, eps))


def face_normals(verts_BxVx3: jax.Array, faces_Fx3: jax.Array) -> jax.Array:
    """Unnormalised triangle normals (B, F, 3): (v1 - v0) x (v2 - v0), of length twice the
    triangle's area, pointing to the side from which the corners run counter-clockwise."""
    tri = verts_BxVx3[:, faces_Fx3]
    return jnp.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])


def vertex_normals(verts_BxVx3: jax.Array, faces_Fx3: jax.Array) -> jax.Array:
    """Unit vertex normals (B, V, 3): area-weighted sums of the adjacent triangles' normals.

    A vertex used by no triangle gets the zero vector.
    """
    fn = face_normals(verts_BxVx3, faces_Fx3)
    summed = jnp.zeros_like(verts_BxVx3)
    for k in range(3):  # scatter each triangle's normal onto its three corners
        summed = summed.at[:, faces_Fx3[:, k]].add(fn)
    return safe_normalize(summed)
