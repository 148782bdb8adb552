"""Exact point-to-surface distances (each point to the closest point of a triangle mesh).

Closest point on a triangle: the region test of Ericson, *Real-Time Collision Detection*
(section 5.1.5) — the point's projection is inside the triangle, on an edge, or a vertex —
written branch-free so it vectorises over (point, triangle) pairs.

Search, in two passes, the first exact where it can prove itself, the second taking the
points it cannot:

1. Uniform grids (a fine and a coarse one): each cell lists every triangle whose bounding
   box comes within a margin m of the cell. For a point in the cell, an unlisted triangle
   is more than m away (one coordinate differs by more than m), so the nearest listed
   triangle is exact when it is at most m away. Points near the surface (NoW's scan points
   after alignment) end here.
2. Every triangle, for the few points left (far from the surface).

Both are jit-compiled over fixed-size chunks of points (padded), so the number of
compilations does not grow with the number of scans.
"""

from __future__ import annotations

from typing import NamedTuple

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


@jax.jit
def _all_triangles_closest(points_Nx3, verts_Vx3, faces_Tx3):
    tri = verts_Vx3[faces_Tx3]                                              # (T, 3, 3)
    valid = jnp.ones(tri.shape[0], bool)

    def one(p):
        return _nearest_on_triangles(jnp.broadcast_to(p, (tri.shape[0], 3)), tri, valid)

    return jax.lax.map(one, points_Nx3, batch_size=64)


class TriangleGrid(NamedTuple):
    """A uniform grid over a mesh: cell c lists ``ids[starts[c]:starts[c + 1]]``, every
    triangle whose bounding box comes within ``margin`` of the cell, so for a point in the
    cell every unlisted triangle is more than ``margin`` away (:func:`build_triangle_grid`)."""

    origin: np.ndarray      # (3,) corner of cell (0, 0, 0)
    cell: float             # cell side
    dims: np.ndarray        # (3,) cells per axis
    margin: float
    starts: np.ndarray      # (C + 1,) int64 offsets into ids (cells in row-major order)
    ids: np.ndarray         # (P,) int32 triangle ids, grouped by cell


def median_edge(tri_Tx3x3: np.ndarray) -> float:
    """The median edge length of a mesh's triangles (the grids' unit)."""
    return float(np.median(np.linalg.norm(tri_Tx3x3 - np.roll(tri_Tx3x3, 1, axis=1), axis=-1)))


def _cell_index(ijk_Nx3: np.ndarray, dims: np.ndarray) -> np.ndarray:
    """Row-major index of grid cells (i, j, k)."""
    return (ijk_Nx3[:, 0] * dims[1] + ijk_Nx3[:, 1]) * dims[2] + ijk_Nx3[:, 2]


def build_triangle_grid(tri_Tx3x3: np.ndarray, cell: float | None = None,
                        margin: float | None = None) -> TriangleGrid:
    """The grid of a mesh's triangles (float64, host). Defaults: cells of the median edge
    length, margin = 1 cell."""
    tri = np.asarray(tri_Tx3x3, np.float64)
    cell = median_edge(tri) if cell is None else cell
    margin = cell if margin is None else margin
    lo_t, hi_t = tri.min(axis=1) - margin, tri.max(axis=1) + margin
    origin = tri.reshape(-1, 3).min(0) - margin
    dims = np.maximum(np.ceil((tri.reshape(-1, 3).max(0) + margin - origin) / cell), 1
                      ).astype(np.int64)
    first = np.clip(np.floor((lo_t - origin) / cell), 0, dims - 1).astype(np.int64)
    last = np.clip(np.floor((hi_t - origin) / cell), 0, dims - 1).astype(np.int64)
    span = last - first + 1                                            # (T, 3)
    # Every (cell, triangle) pair: each triangle's box of cells, enumerated.
    per_tri = np.prod(span, axis=1)
    tri_id = np.repeat(np.arange(len(tri)), per_tri)
    k = np.arange(len(tri_id)) - np.repeat(np.cumsum(per_tri) - per_tri, per_tri)
    sy, sz = span[tri_id, 1], span[tri_id, 2]
    ijk = first[tri_id] + np.stack([k // (sy * sz), (k // sz) % sy, k % sz], -1)
    cell_id = _cell_index(ijk, dims)
    order = np.argsort(cell_id, kind="stable")
    counts = np.bincount(cell_id, minlength=int(np.prod(dims)))
    starts = np.concatenate([[0], np.cumsum(counts)])
    return TriangleGrid(origin, float(cell), dims, float(margin), starts,
                        tri_id[order].astype(np.int32))


def triangle_grids(tri_Tx3x3: np.ndarray) -> tuple[TriangleGrid, ...]:
    """The two grid levels the search tries: fine (cell = margin = the median edge: few
    triangles per cell, for points near the surface) and coarse (4x: points up to four
    median edges from it, e.g. a scan's stray points)."""
    tri = np.asarray(tri_Tx3x3, np.float64)
    edge = median_edge(tri)
    return build_triangle_grid(tri, edge, edge), build_triangle_grid(tri, 4 * edge, 4 * edge)


@jax.jit
def _nearest_listed(points_Nx3, tri_Tx3x3, cand_NxW):
    """(distance, closest point) of each point's nearest triangle among its W listed ones
    (-1 = none)."""
    tri = tri_Tx3x3[jnp.maximum(cand_NxW, 0)]                              # (N, W, 3, 3)
    p = jnp.broadcast_to(points_Nx3[:, None], tri.shape[:2] + (3,))
    return _nearest_on_triangles(p, tri, cand_NxW >= 0)


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def _grid_pass(grid: TriangleGrid, points: np.ndarray, tri, dtype, pairs_per_chunk: int):
    """The nearest listed triangle of each point -> (distance, closest, certified). Points
    are grouped by how many triangles their cell lists (16, 32, 64, ... columns), so the
    work follows the real counts, not the widest cell."""
    ijk = np.floor((points - grid.origin) / grid.cell).astype(np.int64)
    inside = np.all((ijk >= 0) & (ijk < grid.dims), axis=-1)
    ijk = np.clip(ijk, 0, grid.dims - 1)
    cell_id = _cell_index(ijk, grid.dims)
    start = grid.starts[cell_id]
    count = grid.starts[cell_id + 1] - start
    width = np.maximum(16, 2 ** np.ceil(np.log2(np.maximum(count, 1)))).astype(np.int64)
    dist = np.full(len(points), np.inf, dtype)
    closest = np.zeros((len(points), 3), dtype)
    for w in np.unique(width):
        idx = np.flatnonzero(width == w)
        slot = np.arange(w)[None]
        listed = slot < count[idx, None]
        cand = np.where(listed, grid.ids[np.minimum(start[idx, None] + slot,
                                                    len(grid.ids) - 1)], -1)
        # Power-of-two chunks: few shapes (compilations), little padding for small sets.
        chunk = int(min(max(64, pairs_per_chunk // int(w)), max(1024, _next_pow2(len(idx)))))
        d, q = _run_chunks(lambda b, c: _nearest_listed(b, tri, c), points[idx], chunk, dtype,
                           cand.astype(np.int32))
        dist[idx], closest[idx] = d, q
    # Every unlisted triangle is more than `margin` away (slack for float32 rounding).
    certified = inside & (dist <= grid.margin * (1 - 1e-4))
    return dist, closest, certified


def _run_chunks(fn, points: np.ndarray, chunk: int, dtype, *per_point):
    """fn(chunk of points, *chunks of per_point arrays) over fixed-size padded chunks ->
    its outputs, unpadded."""
    outs = None
    for lo in range(0, len(points), chunk):
        n = min(chunk, len(points) - lo)
        pad = [np.concatenate([a[lo:lo + n], np.repeat(a[lo + n - 1:lo + n], chunk - n, 0)])
               for a in (points, *per_point)]
        res = [np.asarray(r)[:n] for r in fn(jnp.asarray(pad[0], dtype), *pad[1:])]
        if outs is None:
            outs = [np.empty((len(points),) + r.shape[1:], r.dtype) for r in res]
        for o, r in zip(outs, res, strict=True):
            o[lo:lo + n] = r
    return outs


def closest_points_on_mesh(points_Nx3, verts_Vx3, faces_Tx3, chunk: int = 4096,
                           return_distances: bool = False,
                           grids: tuple[TriangleGrid, ...] | None = None):
    """The exact closest point (N, 3) on the mesh surface to each point (and the distances
    (N,) with ``return_distances``), computed in the vertices' dtype.

    The passes of the module docstring, each exact where it certifies itself: the triangle
    grids (``grids``: :func:`triangle_grids` of this mesh, built here when not given; pass
    them to reuse them), then every triangle.
    """
    points = np.asarray(points_Nx3)
    verts = jnp.asarray(verts_Vx3)
    dtype = np.asarray(verts[:1]).dtype
    faces_np = np.asarray(faces_Tx3, np.int32)
    faces = jnp.asarray(faces_np)
    tri_np = np.asarray(verts)[faces_np].astype(np.float64)
    tri = jnp.asarray(tri_np, dtype)
    if len(points) == 0:
        empty = np.zeros((0, 3), dtype)
        return (empty, np.zeros(0, dtype)) if return_distances else empty
    grids = triangle_grids(tri_np) if grids is None else grids
    dist, closest = np.full(len(points), np.inf, dtype), np.zeros((len(points), 3), dtype)
    rest = np.arange(len(points))
    for grid in grids:
        if not len(rest):
            break
        d, q, ok = _grid_pass(grid, points[rest].astype(np.float64), tri, dtype, chunk * 64)
        dist[rest[ok]], closest[rest[ok]] = d[ok], q[ok]
        rest = rest[~ok]
    if len(rest):
        d, q = _run_chunks(lambda b: _all_triangles_closest(b, verts, faces), points[rest],
                           256, dtype)
        dist[rest], closest[rest] = d, q
    return (closest, dist) if return_distances else closest


def point_to_mesh_distance(points_Nx3, verts_Vx3, faces_Tx3, chunk: int = 4096,
                           grids: tuple[TriangleGrid, ...] | None = None) -> np.ndarray:
    """The exact distance (N,) of each point to the surface of the mesh (verts, faces)."""
    return closest_points_on_mesh(points_Nx3, verts_Vx3, faces_Tx3, chunk, True, grids)[1]
