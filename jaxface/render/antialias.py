"""nvdiffrast's ``antialias`` contract, in pure JAX: analytic silhouette antialiasing.

Every right and down neighbour pair of pixels whose triangle ids differ is a candidate. Of the
two triangles the nearer one (or the only one, against background) is examined from the centre
of the pixel it covers: walking towards the other pixel's centre, the walk leaves the triangle
through one edge. When that edge is a silhouette edge (no neighbouring triangle across it, or a
neighbour folded over to the same side in screen space: the shared-edge table's opposite
vertex), runs more across the pair than along it, and crosses the segment at distance ``t`` in
[0, 1] pixels, the pixel on whose half the crossing lies takes ``|0.5 - t|`` of the other's
colour. The crossing point moves with the edge's two vertices, which is where the gradients to
positions come from: nvdiffrast's rule divides by the edge's extent across the pair plus
copysign(1e-3 px) and gives no position gradient where the blend saturates (|alpha| >= 0.5).

Only the nearer pixel's own triangle is examined, so a silhouette is blended (and gets
gradients) only where the covering triangle owns the silhouette edge; with sub-pixel triangles
(FLAME at 224 px) that is part of the contour, as in nvdiffrast.

Differences from nvdiffrast, both in cases it leaves undefined: an edge shared by more than two
triangles has no opposite vertex here (it is a silhouette), where nvdiffrast pairs whichever two
its hash table stored first; ties in the exit-edge choice follow ``argmax``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.render.backend import use_nvdiffrast

_POS_GRAD_EPS = 1e-3  # pixels, nvdiffrast's regulariser of 1 / (edge extent)
_CROSSING_SLACK = 1.0 / 16.0  # crossings this far outside the pair still count (then clamped)


@jax.jit   # once per mesh; eager, its ~40 small ops each compile on their own
def antialias_topology(tri_Tx3: jax.Array) -> jax.Array:
    """The shared-edge table: for triangle t and edge k (the edge opposite corner k), the vertex
    opposite that edge in the neighbouring triangle, or -1 when the edge has no single
    neighbour (a boundary, or more than two triangles on it). Degenerate triangles (a repeated
    vertex) take no part. -> (T, 3) int32. Jit-able; compute once per mesh and pass it to
    :func:`antialias` as ``topology`` to skip the sort in each call."""
    tri = tri_Tx3.astype(jnp.int32)
    n_tri = tri.shape[0]
    a = tri[:, [1, 2, 0]].reshape(-1)                                  # edge k: corners k+1, k+2
    b = tri[:, [2, 0, 1]].reshape(-1)
    degenerate = ((tri[:, 0] == tri[:, 1]) | (tri[:, 1] == tri[:, 2])
                  | (tri[:, 2] == tri[:, 0]))
    lo, hi = jnp.minimum(a, b), jnp.maximum(a, b)
    # Degenerate triangles' edges get keys no real edge has, each its own group.
    big = jnp.iinfo(jnp.int32).max
    dead = jnp.repeat(degenerate, 3)
    lo = jnp.where(dead, big, lo)
    hi = jnp.where(dead, -jnp.arange(3 * n_tri, dtype=jnp.int32), hi)
    order = jnp.lexsort((hi, lo)).astype(jnp.int32)
    lo_s, hi_s = lo[order], hi[order]
    starts = jnp.concatenate([jnp.ones(1, bool), (lo_s[1:] != lo_s[:-1]) | (hi_s[1:] != hi_s[:-1])])
    group = jnp.cumsum(starts, dtype=jnp.int32) - 1
    size = jnp.zeros(3 * n_tri, jnp.int32).at[group].add(1)[group]
    index = jnp.arange(3 * n_tri, dtype=jnp.int32)
    partner_sorted = jnp.where(starts, index + 1, index - 1)
    partner_sorted = jnp.clip(partner_sorted, 0, 3 * n_tri - 1)
    partner = jnp.zeros(3 * n_tri, jnp.int32).at[order].set(order[partner_sorted])
    paired = jnp.zeros(3 * n_tri, bool).at[order].set((size == 2) & ~dead[order])
    # The partner edge (triangle s, edge m) is opposite corner m of triangle s.
    opposite = tri.reshape(-1)[partner]
    return jnp.where(paired, opposite, -1).reshape(n_tri, 3)


def _signed_area(p0, p1, p2):
    return ((p1[..., 0] - p0[..., 0]) * (p2[..., 1] - p0[..., 1])
            - (p2[..., 0] - p0[..., 0]) * (p1[..., 1] - p0[..., 1]))


def _screen_triangles(pos_BxVx4, tri_Tx3, opposite_Tx3, height, width):
    """Pixel coordinates of each triangle's corners (B, T, 3, 2) (x right, y down the rows,
    pixel (i, j)'s centre at (j + 0.5, i + 0.5)) and which of its edges are silhouettes in this
    view (B, T, 3)."""
    w = pos_BxVx4[..., 3:4]
    w = jnp.where(w == 0, jnp.finfo(pos_BxVx4.dtype).tiny, w)
    scale = jnp.asarray([width / 2.0, height / 2.0], pos_BxVx4.dtype)
    xy = (pos_BxVx4[..., :2] / w + 1.0) * scale                        # (B, V, 2)
    corners = xy[:, tri_Tx3]                                           # (B, T, 3, 2)
    own = _signed_area(corners[..., 0, :], corners[..., 1, :], corners[..., 2, :])
    # A missing neighbour stands in as the corner itself: the same area, so a silhouette.
    opp = jnp.where((opposite_Tx3 >= 0)[None, ..., None],
                    xy[:, jnp.maximum(opposite_Tx3, 0)], corners)
    silhouette = []
    for k in range(3):
        wing = [corners[..., i, :] if i != k else opp[..., k, :] for i in range(3)]
        silhouette.append(jnp.signbit(_signed_area(*wing)) == jnp.signbit(own))
    return corners, jax.lax.stop_gradient(jnp.stack(silhouette, -1))


def _pair_alpha(rast0, rast1, centre0, step, corners_BxTx3x2, silhouette_BxTx3, axis,
                gradient_boost):
    """Blend weight alpha of each pixel pair (p0, p1 = p0 + step) along ``axis`` (0: x, right
    pairs; 1: y, down pairs). alpha > 0: p0 takes alpha of p1's colour; alpha < 0: p1 takes
    -alpha of p0's."""
    id0, id1 = rast0[..., 3].astype(jnp.int32), rast1[..., 3].astype(jnp.int32)
    first = (id0 > 0) & ((id1 == 0) | (rast0[..., 2] < rast1[..., 2]))
    tri = jnp.maximum(jnp.where(first, id0, id1) - 1, 0)
    sign = jnp.where(first, 1.0, -1.0).astype(corners_BxTx3x2.dtype)  # towards the other pixel
    centre = centre0 + jnp.where(first, 0.0, 1.0)[..., None] * step
    gather = jax.vmap(lambda per_tri, ids: per_tri[ids])
    p = gather(corners_BxTx3x2, tri) - centre[..., None, :]            # (..., 3, 2)
    sil = gather(silhouette_BxTx3, tri)
    along, across = p[..., axis], p[..., 1 - axis]                     # (..., 3)
    a1, a2 = jnp.roll(along, -1, -1), jnp.roll(along, -2, -1)          # edge k's two corners
    c1, c2 = jnp.roll(across, -1, -1), jnp.roll(across, -2, -1)
    num = a1 * c2 - a2 * c1
    den = c2 - c1
    crosses = jnp.signbit(c1) != jnp.signbit(c2)
    # Distance from the examined pixel's centre to where the edge crosses the pair's line.
    exact = num / jnp.where(den == 0, 1.0, den)
    dist = jnp.where(crosses, sign[..., None] * exact, -jnp.inf)
    edge = jnp.argmax(dist, axis=-1)
    pick = jax.nn.one_hot(edge, 3, dtype=bool)
    t = jnp.sum(jnp.where(pick, dist, 0.0), -1)
    steep = jnp.abs(den) >= jnp.abs(a2 - a1)
    ok = (jnp.any(pick & crosses & sil & steep, -1) & (id0 != id1)
          & (t > -_CROSSING_SLACK) & (t < 1.0 + _CROSSING_SLACK))
    alpha = jnp.where(ok, sign * (0.5 - jnp.clip(t, 0.0, 1.0)), 0.0)
    alpha = jax.lax.stop_gradient(alpha)
    # Position gradients: d alpha = -d(crossing) with nvdiffrast's regularised denominator.
    soft = num / (den + jnp.copysign(_POS_GRAD_EPS, den))
    soft = -jnp.sum(jnp.where(pick, soft, 0.0), -1)
    live = ok & (jnp.abs(alpha) < 0.5)
    return alpha + jnp.where(live, gradient_boost * (soft - jax.lax.stop_gradient(soft)), 0.0)


def antialias(color: jax.Array, rast: jax.Array, pos: jax.Array, tri_Tx3: jax.Array,
              topology: jax.Array | None = None, pos_gradient_boost: float = 1.0,
              backend: str = "auto") -> jax.Array:
    """Antialiases silhouette edges of a rendered image -> (B, H, W, C).

    Args:
      color: (B, H, W, C) the image to antialias (e.g. interpolated and shaded).
      rast: (B, H, W, 4) the :func:`~jaxface.render.rasterize` output it was rendered from.
      pos: (B, V, 4) or (V, 4) the clip-space positions given to ``rasterize``.
      tri_Tx3: the triangles given to ``rasterize``.
      topology: :func:`antialias_topology` of ``tri_Tx3``, computed here when None.
      pos_gradient_boost: multiplies the gradients to positions (nvdiffrast's option).
      backend: "auto", "jax" or "nvdiffrast" (see :mod:`jaxface.render.backend`); nvdiffrast
        builds its own edge table, ``topology`` is not used there.
    """
    if use_nvdiffrast(backend, color.dtype):
        from jaxface.render.nvdr_ffi import ops

        return ops.antialias(color, rast, pos, tri_Tx3, pos_gradient_boost)
    b, height, width, _ = color.shape
    pos = jnp.broadcast_to(pos[None] if pos.ndim == 2 else pos, (b,) + pos.shape[-2:])
    if topology is None:
        topology = antialias_topology(tri_Tx3)
    corners, silhouette = _screen_triangles(pos, tri_Tx3, topology, height, width)
    jj, ii = jnp.meshgrid(jnp.arange(width), jnp.arange(height))
    centres = jnp.stack([jj, ii], -1).astype(pos.dtype) + 0.5          # (H, W, 2)
    rast = jax.lax.stop_gradient(rast)
    out = color
    for axis in (0, 1):
        n = (width if axis == 0 else height) - 1
        head = (slice(None),) + ((slice(None), slice(0, n)) if axis == 0
                                 else (slice(0, n), slice(None)))
        tail = (slice(None),) + ((slice(None), slice(1, None)) if axis == 0
                                 else (slice(1, None), slice(None)))
        step = jnp.asarray([1.0, 0.0] if axis == 0 else [0.0, 1.0], pos.dtype)
        alpha = _pair_alpha(rast[head], rast[tail], centres[head[1:]], step, corners,
                            silhouette, axis, pos_gradient_boost)[..., None]
        diff = color[tail] - color[head]
        to_first = jnp.where(alpha > 0, alpha * diff, 0.0)
        to_second = jnp.where(alpha < 0, alpha * diff, 0.0)
        pad_first = [(0, 0)] * 4
        pad_first[2 - axis] = (0, 1)
        pad_second = [(0, 0)] * 4
        pad_second[2 - axis] = (1, 0)
        out = out + jnp.pad(to_first, pad_first) + jnp.pad(to_second, pad_second)
    return out
