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

Only pairs that can blend are evaluated (different triangles, the examined one with a
silhouette edge: a few percent of a face render's pairs), gathered up to a static budget; a
render with more evaluates every pair. Reverse-mode differentiable only (a hand-written VJP),
as nvdiffrast's.

Differences from nvdiffrast, both in cases it leaves undefined: an edge shared by more than two
triangles has no opposite vertex here (it is a silhouette), where nvdiffrast pairs whichever two
its hash table stored first; ties in the exit-edge choice follow ``argmax``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxface.render.backend import use_nvdiffrast

_POS_GRAD_EPS = 1e-3  # pixels, nvdiffrast's regulariser of 1 / (edge extent)
_CROSSING_SLACK = 1.0 / 16.0  # crossings this far outside the pair still count (then clamped)
# A face render's candidate pairs are 0.3-3 % of the pairs (the synthetic head at 64-512 px):
# a budget of 1/16 leaves room, and a larger count falls back to every pair.
_PAIR_BUDGET_DIVISOR = 16


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


def _examined(rast0, rast1):
    """Which pixel of each pair is examined (the nearer covered one: ``first`` for p0) and its
    triangle (0-based; 0 where neither is covered)."""
    id0, id1 = rast0[..., 3].astype(jnp.int32), rast1[..., 3].astype(jnp.int32)
    first = (id0 > 0) & ((id1 == 0) | (rast0[..., 2] < rast1[..., 2]))
    return id0, id1, first, jnp.maximum(jnp.where(first, id0, id1) - 1, 0)


def _pair_alpha(rast0, rast1, centre0, image, step, corners_BxTx3x2, silhouette_BxTx3, axis,
                gradient_boost):
    """Blend weight alpha of pixel pairs (p0, p1 = p0 + step) of the batch's ``image`` along
    ``axis`` (0: x, right pairs; 1: y, down pairs), any leading shape. alpha > 0: p0 takes
    alpha of p1's colour; alpha < 0: p1 takes -alpha of p0's."""
    id0, id1, first, tri = _examined(rast0, rast1)
    sign = jnp.where(first, 1.0, -1.0).astype(corners_BxTx3x2.dtype)  # towards the other pixel
    centre = centre0 + jnp.where(first, 0.0, 1.0)[..., None] * step
    tri_global = image * corners_BxTx3x2.shape[1] + tri               # into the flat batch
    p = corners_BxTx3x2.reshape(-1, 3, 2)[tri_global] - centre[..., None, :]  # (..., 3, 2)
    sil = silhouette_BxTx3.reshape(-1, 3)[tri_global]
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


def _pair_geometry(rast, axis):
    """(rows, cols) of the pairs along ``axis`` in one image, and the pixel offset of a pair's
    second pixel from its first in ``rast`` flattened over (B, H, W)."""
    height, width = rast.shape[1:3]
    return ((height, width - 1), 1) if axis == 0 else ((height - 1, width), width)


def _pair_ends(x_BxHxW, axis):
    """The first and second pixels of every pair along ``axis`` of a (B, H, W, ...) array."""
    if axis == 0:
        return x_BxHxW[:, :, :-1], x_BxHxW[:, :, 1:]
    return x_BxHxW[:, :-1], x_BxHxW[:, 1:]


def _pixel_silhouette(rast, silhouette_BxTx3):
    """Whether each pixel's triangle has a silhouette edge in this view (B, H, W); False on
    the background."""
    ids = rast[..., 3].astype(jnp.int32)
    has_silhouette = jnp.any(silhouette_BxTx3, -1)
    return (ids > 0) & jax.vmap(lambda per_tri, i: per_tri[i])(has_silhouette,
                                                               jnp.maximum(ids - 1, 0))


def _alpha_at(pair_K, rast, corners_BxTx3x2, silhouette_BxTx3, axis, gradient_boost):
    """alpha of the pairs numbered ``pair_K`` in (B, rows, cols) order (out of range: any
    value, to be dropped)."""
    height, width = rast.shape[1:3]
    (rows, cols), offset = _pair_geometry(rast, axis)
    image, i, j = pair_K // (rows * cols), (pair_K // cols) % rows, pair_K % cols
    pixel = (image * height + i) * width + j
    flat = rast.reshape(-1, 4)
    first, second = flat[pixel], flat[pixel + offset]
    centre = jnp.stack([j, i], -1).astype(corners_BxTx3x2.dtype) + 0.5
    step = jnp.asarray([1.0, 0.0] if axis == 0 else [0.0, 1.0], corners_BxTx3x2.dtype)
    return _pair_alpha(first, second, centre, image, step, corners_BxTx3x2, silhouette_BxTx3,
                       axis, gradient_boost)


def _compact_pairs(rast, pixel_silhouette_BxHxW, axis, pair_budget):
    """The pairs that can blend: their pixels see different triangles and the examined one's
    has a silhouette edge (~1-3 % of a face render's pairs) -> (their numbers, padded with the
    pair count up to ``pair_budget``; how many there are)."""
    id0, id1, first, _ = _examined(*_pair_ends(rast, axis))
    silhouette = jnp.where(first, *_pair_ends(pixel_silhouette_BxHxW, axis))
    candidate = ((id0 != id1) & silhouette).reshape(-1)
    pair_K = jnp.nonzero(candidate, size=pair_budget, fill_value=candidate.shape[0])[0]
    return pair_K, jnp.sum(candidate)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _axis_alpha(rast, corners_BxTx3x2, silhouette_BxTx3, pair_K, count, axis, gradient_boost):
    """alpha of every pair along ``axis`` -> (B, H, W - 1) for right pairs, (B, H - 1, W) for
    down pairs, from the ``count`` candidate pairs ``pair_K`` (:func:`_compact_pairs`); when
    they overflow ``pair_K``, every pair is evaluated (the same function, slower).

    A hand-written VJP (reverse mode only, as nvdiffrast's): autodiff of the ``cond`` would
    return both branches' residuals from it, ~30 pair-sized arrays filled on every call."""
    return _axis_alpha_fwd(rast, corners_BxTx3x2, silhouette_BxTx3, pair_K, count, axis,
                           gradient_boost)[0]


def _branches(rast, corners, silhouette, axis, gradient_boost, pair_K, count, function):
    """``function(alpha_of_pairs, pair_numbers)`` on the candidates, or on every pair when
    they are more than the budget."""
    (rows, cols), _ = _pair_geometry(rast, axis)
    n_pairs = rast.shape[0] * rows * cols

    def alpha_of(pairs):
        return lambda c: _alpha_at(pairs, rast, c, silhouette, axis, gradient_boost)

    every = jnp.arange(n_pairs, dtype=pair_K.dtype)
    if pair_K.shape[0] >= n_pairs:
        return function(alpha_of(every), every)
    return jax.lax.cond(count <= pair_K.shape[0],
                        lambda: function(alpha_of(pair_K), pair_K),
                        lambda: function(alpha_of(every), every))


def _axis_alpha_fwd(rast, corners, silhouette, pair_K, count, axis, gradient_boost):
    (rows, cols), _ = _pair_geometry(rast, axis)
    n_pairs = rast.shape[0] * rows * cols

    def scatter(alpha_of, pairs):  # pairs past the candidates are n_pairs: dropped
        return jnp.zeros(n_pairs, corners.dtype).at[pairs].add(alpha_of(corners), mode="drop")

    alpha = _branches(rast, corners, silhouette, axis, gradient_boost, pair_K, count, scatter)
    return alpha.reshape(rast.shape[0], rows, cols), (rast, corners, silhouette, pair_K, count)


def _axis_alpha_bwd(axis, gradient_boost, residuals, d_alpha):
    rast, corners, silhouette, pair_K, count = residuals
    d_alpha = d_alpha.reshape(-1)

    def pull_back(alpha_of, pairs):
        _, vjp = jax.vjp(alpha_of, corners)
        return vjp(d_alpha.at[pairs].get(mode="fill", fill_value=0))[0]

    d_corners = _branches(rast, corners, silhouette, axis, gradient_boost, pair_K, count,
                          pull_back)
    return None, d_corners, None, None, None


_axis_alpha.defvjp(_axis_alpha_fwd, _axis_alpha_bwd)


def antialias(color: jax.Array, rast: jax.Array, pos: jax.Array, tri_Tx3: jax.Array,
              topology: jax.Array | None = None, pos_gradient_boost: float = 1.0,
              backend: str = "auto", pair_budget: int | None = None) -> jax.Array:
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
      pair_budget: how many candidate pairs per direction are evaluated sparsely (static);
        None: 1/16 of the pairs. Above it every pair is evaluated: the same image, slower.
    """
    if use_nvdiffrast(backend, color.dtype):
        from jaxface.render.nvdr_ffi import ops

        return ops.antialias(color, rast, pos, tri_Tx3, pos_gradient_boost)
    if topology is None:
        topology = antialias_topology(tri_Tx3)
    return _antialias(color, rast, pos, tri_Tx3, topology, pos_gradient_boost, pair_budget)


# Jitted as one program also when called eagerly: an eager ``cond`` compiles a program of its
# own around the arrays its branches close over, and reading such programs back from the
# persistent compilation cache segfaulted the test process (jax 0.10.2, CPU; reproduced
# with a seed sweep of the gradient test).
@functools.partial(jax.jit, static_argnames=("pos_gradient_boost", "pair_budget"))
def _antialias(color, rast, pos, tri_Tx3, topology, pos_gradient_boost, pair_budget):
    b, height, width, _ = color.shape
    pos = jnp.broadcast_to(pos[None] if pos.ndim == 2 else pos, (b,) + pos.shape[-2:])
    corners, silhouette = _screen_triangles(pos, tri_Tx3, topology, height, width)
    rast = jax.lax.stop_gradient(rast)
    pixel_silhouette = _pixel_silhouette(rast, silhouette)
    out = color
    for axis in (0, 1):
        (rows, cols), _ = _pair_geometry(rast, axis)
        n_pairs = b * rows * cols
        budget = n_pairs // _PAIR_BUDGET_DIVISOR if pair_budget is None else pair_budget
        pair_K, count = _compact_pairs(rast, pixel_silhouette, axis,
                                       max(1, min(budget, n_pairs)))
        alpha = _axis_alpha(rast, corners, silhouette, pair_K, count, axis,
                            pos_gradient_boost)[..., None]
        head, tail = _pair_ends(color, axis)
        diff = tail - head
        to_first = jnp.where(alpha > 0, alpha * diff, 0.0)
        to_second = jnp.where(alpha < 0, alpha * diff, 0.0)
        pad_first = [(0, 0)] * 4
        pad_first[2 - axis] = (0, 1)
        pad_second = [(0, 0)] * 4
        pad_second[2 - axis] = (1, 0)
        out = out + jnp.pad(to_first, pad_first) + jnp.pad(to_second, pad_second)
    return out
