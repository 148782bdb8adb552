"""Exact point-to-surface distances (each point to the closest point of a triangle mesh).

Closest point on a triangle: the region test of Ericson, *Real-Time Collision Detection*
(section 5.1.5) — the point's projection is inside the triangle, on an edge, or a vertex —
written branch-free so it vectorises over (point, triangle) pairs.

Search: for each point the K nearest mesh vertices are found (a chunked distance matrix) and
every triangle incident to them is tested. That is exact whenever the best distance found is
at most d_K - L, with d_K the K-th nearest vertex's distance and L the mesh's longest edge
(any point of a triangle lies within L of each of its corners, so a triangle with no corner
among the K nearest is at least d_K - L away). Points without that certificate are tested
against every triangle, so the result is always exact; all of it jit-compiled in chunks.
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
    return jnp.linalg.norm(p_Nx3 - closest_point_on_triangle(p_Nx3, a_Nx3, b_Nx3, c_Nx3), -1)


def vertex_triangles(faces_Tx3: np.ndarray, n_vertices: int) -> np.ndarray:
    """(V, M) the triangles incident to each vertex, padded with -1 (M = max valence)."""
    faces = np.asarray(faces_Tx3)
    owners = faces.reshape(-1)
    tris = np.repeat(np.arange(len(faces)), 3)
    order = np.argsort(owners, kind="stable")
    owners, tris = owners[order], tris[order]
    counts = np.bincount(owners, minlength=n_vertices)
    table = np.full((n_vertices, max(int(counts.max()), 1)), -1, np.int32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(owners)) - starts[owners]
    table[owners, slot] = tris
    return table


@functools.partial(jax.jit, static_argnames=("k",))
def _candidate_distances(points_Nx3, verts_Vx3, faces_Tx3, vertex_tris_VxM, longest_edge, k):
    d2 = (jnp.sum(points_Nx3**2, -1)[:, None] - 2 * points_Nx3 @ verts_Vx3.T
          + jnp.sum(verts_Vx3**2, -1)[None, :])
    neg, nearest = jax.lax.top_k(-d2, k)                                   # (N, K)
    d_k = jnp.sqrt(jnp.maximum(-neg[:, -1], 0.0))
    cand = vertex_tris_VxM[nearest].reshape(points_Nx3.shape[0], -1)      # (N, K M)
    valid = cand >= 0
    tri = verts_Vx3[faces_Tx3[jnp.maximum(cand, 0)]]                       # (N, KM, 3, 3)
    p = jnp.broadcast_to(points_Nx3[:, None], tri.shape[:2] + (3,))
    d = point_triangle_distance(p, tri[..., 0, :], tri[..., 1, :], tri[..., 2, :])
    best = jnp.min(jnp.where(valid, d, jnp.inf), axis=1)
    return best, best <= d_k - longest_edge


@jax.jit
def _all_triangle_distances(points_Nx3, verts_Vx3, faces_Tx3):
    tri = verts_Vx3[faces_Tx3]                                              # (T, 3, 3)

    def one(p):
        pb = jnp.broadcast_to(p, (tri.shape[0], 3))
        return jnp.min(point_triangle_distance(pb, tri[:, 0], tri[:, 1], tri[:, 2]))

    return jax.lax.map(one, points_Nx3, batch_size=64)


def point_to_mesh_distance(points_Nx3, verts_Vx3, faces_Tx3, k: int = 8,
                           chunk: int = 4096) -> np.ndarray:
    """The exact distance (N,) of each point to the surface of the mesh (verts, faces),
    float32 unless the inputs are float64 with x64 enabled (see the module docstring)."""
    points = np.asarray(points_Nx3)
    verts = jnp.asarray(verts_Vx3)
    faces_np = np.asarray(faces_Tx3, np.int32)
    faces = jnp.asarray(faces_np)
    table = jnp.asarray(vertex_triangles(faces_np, verts.shape[0]))
    tri = np.asarray(verts)[faces_np]
    longest = float(np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=-1)))
    k = min(k, verts.shape[0])
    n = points.shape[0]
    out = np.empty(n, np.asarray(verts).dtype)
    exact = np.empty(n, bool)
    for lo in range(0, n, chunk):
        block = points[lo:lo + chunk]
        padded = np.concatenate([block, np.repeat(block[-1:], chunk - len(block), 0)])
        d, ok = _candidate_distances(jnp.asarray(padded, verts.dtype), verts, faces, table,
                                     longest, k)
        out[lo:lo + len(block)] = np.asarray(d)[:len(block)]
        exact[lo:lo + len(block)] = np.asarray(ok)[:len(block)]
    rest = np.flatnonzero(~exact)
    for lo in range(0, len(rest), chunk):
        idx = rest[lo:lo + chunk]
        block = points[idx]
        padded = np.concatenate([block, np.repeat(block[-1:], chunk - len(block), 0)])
        d = _all_triangle_distances(jnp.asarray(padded, verts.dtype), verts, faces)
        out[idx] = np.asarray(d)[:len(idx)]
    return out
