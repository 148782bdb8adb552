"""Exact point-to-surface distances (each point to the closest point of a triangle mesh).

Closest point on a triangle: the region test of Ericson, *Real-Time Collision Detection*
(section 5.1.5) — the point's projection is inside the triangle, on an edge, or a vertex —
written branch-free so it vectorises over (point, triangle) pairs.

Search: every point of triangle t lies within r_t of its centroid c_t, so |p - c_t| - r_t
bounds the distance from p to t from below. For each point the K triangles with the smallest
bound are tested exactly (a chunked point x centroid distance matrix and a top-k); that is
exact whenever the best distance found is at most the (K+1)-th smallest bound, since every
other triangle is at least that far. Points without that certificate are tested against
every triangle, so the result is always exact; all of it jit-compiled in chunks.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def closest_point_on_triangle(p_Nx3: jax.Array, a_Nx3: jax.Array, b_Nx3: jax.Array,
                              c_Nx3: jax.Array) -> jax.Array:
    """The point of each triangle (a, b, c) closest to p -> (N, 3). Degenerate triangles
    give a point of their edges."""
    def dot(u, v):
        return jnp.sum(u * v, -1)

    ab, ac, ap = b_Nx3 - a_Nx3, c_Nx3 - a_Nx3, p_Nx3 - a_Nx3
    d1, d2 = dot(ab, ap), dot(ac, ap)
    bp = p_Nx3 - b_Nx3
    d3, d4 = dot(ab, bp), dot(ac, bp)
    cp = p_Nx3 - c_Nx3
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    def safe_div(x, y):
        return x / jnp.where(y == 0, 1.0, y)

    def lerp(p0, p1, t):
        return p0 + t[..., None] * (p1 - p0)

    denom = va + vb + vc
    v = safe_div(vb, denom)
    w = safe_div(vc, denom)
    out = a_Nx3 + v[..., None] * ab + w[..., None] * ac                  # inside
    # The regions in reverse order of Ericson's tests, so the earlier tests win.
    on_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    out = jnp.where(on_bc[..., None],
                    lerp(b_Nx3, c_Nx3, safe_div(d4 - d3, (d4 - d3) + (d5 - d6))), out)
    on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    out = jnp.where(on_ac[..., None], lerp(a_Nx3, c_Nx3, safe_div(d2, d2 - d6)), out)
    out = jnp.where(((d6 >= 0) & (d5 <= d6))[..., None], c_Nx3, out)     # vertex c
    on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    out = jnp.where(on_ab[..., None], lerp(a_Nx3, b_Nx3, safe_div(d1, d1 - d3)), out)
    out = jnp.where(((d3 >= 0) & (d4 <= d3))[..., None], b_Nx3, out)     # vertex b
    out = jnp.where(((d1 <= 0) & (d2 <= 0))[..., None], a_Nx3, out)     # vertex a
    return out


def point_triangle_distance(p_Nx3, a_Nx3, b_Nx3, c_Nx3) -> jax.Array:
    """|p - closest point of triangle (a, b, c)| -> (N,)."""
    return jnp.linalg.norm(p_Nx3 - closest_point_on_triangle(p_Nx3, a_Nx3, b_Nx3, c_Nx3),
                           axis=-1)


def _nearest_on_triangles(p_NxCx3, tri_NxCx3x3, valid_NxC):
    """Over C candidate triangles per point: (distance, closest point) of the nearest."""
    q = closest_point_on_triangle(p_NxCx3, tri_NxCx3x3[..., 0, :], tri_NxCx3x3[..., 1, :],
                                  tri_NxCx3x3[..., 2, :])
    d = jnp.where(valid_NxC, jnp.linalg.norm(p_NxCx3 - q, axis=-1), jnp.inf)
    best = jnp.argmin(d, axis=-1)
    return (jnp.take_along_axis(d, best[..., None], -1)[..., 0],
            jnp.take_along_axis(q, best[..., None, None], -2)[..., 0, :])


@functools.partial(jax.jit, static_argnames=("k",))
def _candidate_closest(points_Nx3, tri_Tx3x3, centre_Tx3, radius_T, k):
    # Every point of triangle t lies within radius_t of its centre, so p is at least
    # |p - centre_t| - radius_t from it: test the K triangles with the smallest bound.
    d2 = (jnp.sum(points_Nx3**2, -1)[:, None] - 2 * points_Nx3 @ centre_Tx3.T
          + jnp.sum(centre_Tx3**2, -1)[None, :])
    bound = jnp.sqrt(jnp.maximum(d2, 0.0)) - radius_T[None, :]
    neg, cand = jax.lax.top_k(-bound, k + 1)                               # (N, K + 1)
    tri = tri_Tx3x3[cand[:, :k]]                                           # (N, K, 3, 3)
    p = jnp.broadcast_to(points_Nx3[:, None], tri.shape[:2] + (3,))
    d, q = _nearest_on_triangles(p, tri, jnp.ones(tri.shape[:2], bool))
    # Every other triangle is at least the (K+1)-th smallest bound away.
    return d, q, d <= -neg[:, -1]


@jax.jit
def _all_triangles_closest(points_Nx3, verts_Vx3, faces_Tx3):
    tri = verts_Vx3[faces_Tx3]                                              # (T, 3, 3)
    valid = jnp.ones(tri.shape[0], bool)

    def one(p):
        return _nearest_on_triangles(jnp.broadcast_to(p, (tri.shape[0], 3)), tri, valid)

    return jax.lax.map(one, points_Nx3, batch_size=64)


def _padded_chunks(points: np.ndarray, chunk: int):
    for lo in range(0, len(points), chunk):
        block = points[lo:lo + chunk]
        yield lo, len(block), np.concatenate([block, np.repeat(block[-1:], chunk - len(block),
                                                                0)])


def closest_points_on_mesh(points_Nx3, verts_Vx3, faces_Tx3, k: int = 32, chunk: int = 2048,
                           return_distances: bool = False):
    """The exact closest point (N, 3) on the mesh surface to each point (and the distances
    (N,) with ``return_distances``), computed in the vertices' dtype (see the module
    docstring for the search and why it is exact)."""
    points = np.asarray(points_Nx3)
    verts = jnp.asarray(verts_Vx3)
    dtype = np.asarray(verts[:1]).dtype
    faces_np = np.asarray(faces_Tx3, np.int32)
    faces = jnp.asarray(faces_np)
    tri_np = np.asarray(verts)[faces_np].astype(np.float64)
    centre = tri_np.mean(axis=1)
    radius = np.max(np.linalg.norm(tri_np - centre[:, None], axis=-1), axis=1)
    # Rounding slack, so the bound stays a bound in float32.
    radius = radius * (1 + 1e-5) + 1e-6 * np.max(np.abs(tri_np))
    tri, centre, radius = (jnp.asarray(a, dtype) for a in (tri_np, centre, radius))
    k = min(k, faces_np.shape[0] - 1)
    dist = np.empty(len(points), dtype)
    closest = np.empty((len(points), 3), dtype)
    exact = np.empty(len(points), bool)
    for lo, n, block in _padded_chunks(points, chunk):
        d, q, ok = _candidate_closest(jnp.asarray(block, dtype), tri, centre, radius, k)
        dist[lo:lo + n], closest[lo:lo + n] = np.asarray(d)[:n], np.asarray(q)[:n]
        exact[lo:lo + n] = np.asarray(ok)[:n]
    rest = np.flatnonzero(~exact)
    for lo, n, block in _padded_chunks(points[rest], chunk):
        d, q = _all_triangles_closest(jnp.asarray(block, dtype), verts, faces)
        idx = rest[lo:lo + n]
        dist[idx], closest[idx] = np.asarray(d)[:n], np.asarray(q)[:n]
    return (closest, dist) if return_distances else closest


def point_to_mesh_distance(points_Nx3, verts_Vx3, faces_Tx3, k: int = 32,
                           chunk: int = 2048) -> np.ndarray:
    """The exact distance (N,) of each point to the surface of the mesh (verts, faces)."""
    return closest_points_on_mesh(points_Nx3, verts_Vx3, faces_Tx3, k, chunk, True)[1]
