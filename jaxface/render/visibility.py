"""Which triangle each pixel sees: a z-buffer over clip-space triangles, in pure JAX.

Nothing here is differentiable (the triangle id is not, in nvdiffrast's contract either);
``rasterize`` recomputes barycentrics differentiably from the winning triangle.

Coverage uses homogeneous 2-D edge functions (Olano & Greer 1997), so a triangle with vertices
behind the camera (w <= 0) is drawn exactly where its part in front of the camera projects, and
the per-pixel test -1 <= z/w <= 1 clips it to the near and far planes, as clipping to the
frustum does. No back-face culling.

Two paths, both with static shapes:

- fast: every triangle whose pixel bounding box fits a ``window`` x ``window`` square tests
  the pixels of that square; depths go into the buffer by scatter-min, then, among the
  candidates at the winning depth, the lowest triangle id by a second scatter-min (two passes
  instead of packing (depth, id) into 64 bits).
- looped: triangles whose box fits one of the wider windows of ``LEVEL_WINDOWS`` do the
  same, in chunks inside a ``while_loop`` that runs only as many chunks as there are such
  triangles; the last level's window is the whole screen and takes every remaining triangle
  (and those with a vertex at w <= 0), so none is ever dropped. A face mesh has none there.

The batch shares one buffer, so every level is linear in the batch size.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

WINDOW = 4  # the static level's window: most face triangles at 224^2 fit 4 x 4 pixels
# The looped levels' windows (then the whole screen). A chunk holds CHUNK // window^2
# triangles, i.e. about CHUNK candidate pixels.
LEVEL_WINDOWS = (8, 16, 32, 64)
CHUNK = 1 << 18


def pixel_centres(height: int, width: int, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Clip-space x, y of the pixel centres (H*W,), row 0 at y = -1 (nvdiffrast's layout)."""
    x = (jnp.arange(width, dtype=dtype) + 0.5) / width * 2.0 - 1.0
    y = (jnp.arange(height, dtype=dtype) + 0.5) / height * 2.0 - 1.0
    return jnp.tile(x, height), jnp.repeat(y, width)


def edge_functions(tri_Nx3x4: jax.Array, px_N: jax.Array, py_N: jax.Array) -> jax.Array:
    """Homogeneous edge functions (N, 3) of pixel (px, py) for clip-space triangles.

    a_i is the 2-D cross product of the other two vertices' (x - px w, y - py w); the
    perspective-correct barycentrics are a / sum(a).
    """
    qx = tri_Nx3x4[..., 0] - px_N[..., None] * tri_Nx3x4[..., 3]
    qy = tri_Nx3x4[..., 1] - py_N[..., None] * tri_Nx3x4[..., 3]
    a0 = qx[..., 1] * qy[..., 2] - qy[..., 1] * qx[..., 2]
    a1 = qx[..., 2] * qy[..., 0] - qy[..., 2] * qx[..., 0]
    a2 = qx[..., 0] * qy[..., 1] - qy[..., 0] * qx[..., 1]
    return jnp.stack([a0, a1, a2], axis=-1)


def triangle_planes(tri_Nx3x4: jax.Array) -> jax.Array:
    """Per-triangle affine forms (N, 5, 3) of a0, a1, a2, sum(a z) and sum(a w) in the pixel
    position: value = c[0] + c[1] px + c[2] py (the px * py terms of the edge functions
    cancel), so testing a pixel costs a few multiply-adds and no per-pixel triangle copy."""
    x, y, z, w = (tri_Nx3x4[..., k] for k in range(4))
    j, k = [1, 2, 0], [2, 0, 1]
    const = x[..., j] * y[..., k] - y[..., j] * x[..., k]
    cx = y[..., j] * w[..., k] - w[..., j] * y[..., k]
    cy = w[..., j] * x[..., k] - x[..., j] * w[..., k]
    a = jnp.stack([const, cx, cy], axis=-1)                            # (N, 3 edges, 3)
    zsum = jnp.einsum("nec,ne->nc", a, z)
    wsum = jnp.einsum("nec,ne->nc", a, w)
    return jnp.concatenate([a, zsum[:, None], wsum[:, None]], axis=1)


def coverage_depth(planes_Nx5x3: jax.Array, px: jax.Array, py: jax.Array):
    """(covered, z/w) of pixels (N, K) against the N triangles of ``triangle_planes``
    (inclusive of edges; clipped to w > 0 and -1 <= z/w <= 1)."""
    c = planes_Nx5x3[:, None]                                          # (N, 1, 5, 3)
    val = c[..., 0] + c[..., 1] * px[..., None] + c[..., 2] * py[..., None]  # (N, K, 5)
    a, zsum, wsum = val[..., :3], val[..., 3], val[..., 4]
    total = jnp.sum(a, axis=-1)
    same_sign = jnp.all(a >= 0, axis=-1) | jnp.all(a <= 0, axis=-1)
    in_front = wsum * total > 0                                        # w at the pixel > 0
    zw = zsum / jnp.where(wsum == 0, 1.0, wsum)
    covered = same_sign & (total != 0) & in_front & (zw >= -1.0) & (zw <= 1.0)
    return covered, zw


def _pixel_range(lo, hi, n):
    """Pixel indices [first, last] whose centres lie in the clip-space interval [lo, hi]."""
    first = jnp.ceil((lo + 1.0) * 0.5 * n - 0.5)
    last = jnp.floor((hi + 1.0) * 0.5 * n - 0.5)
    return jnp.maximum(first, 0.0), jnp.minimum(last, n - 1.0)


def _padded_order(member_N: jax.Array, chunk: int) -> jax.Array:
    """Indices of the members (in id order), then zeros up to one chunk more than there are
    triangles, so that a chunk's ``dynamic_slice`` never reaches the end (where it would shift
    back and skip members); entries past the member count are masked out. A compaction by
    prefix sum, not a sort: five argsorts of the batch's triangles were ~20 % of the
    rasterizer's forward in a trace."""
    size = member_N.shape[0] + chunk
    return jnp.nonzero(member_N, size=size, fill_value=0)[0].astype(jnp.int32)


def _splat(zbuf, ids, n_tri, tri_id_N, image_N, planes_Nx5x3, x0, y0, x1, y1, live_N, window,
           height, width):
    """Tests each live triangle against the pixels of a window x window square from its box
    corner (x0, y0), and merges the hits into (zbuf, ids) by (depth, id). ``tri_id_N`` are
    global ids (image * T + triangle), ``n_tri`` = B * T the "no triangle" id; ``image_N``
    places each triangle's pixels."""
    off = jnp.arange(window, dtype=x0.dtype)
    n = x0.shape[0]
    cx = jnp.broadcast_to(x0[:, None, None] + off[None, None, :], (n, window, window))
    cy = jnp.broadcast_to(y0[:, None, None] + off[None, :, None], (n, window, window))
    valid = live_N[:, None, None] & (cx <= x1[:, None, None]) & (cy <= y1[:, None, None])
    cx, cy, valid = cx.reshape(n, -1), cy.reshape(n, -1), valid.reshape(n, -1)
    base = (image_N * (height * width))[:, None]
    covered, zw = coverage_depth(planes_Nx5x3, (cx + 0.5) / width * 2.0 - 1.0,
                                 (cy + 0.5) / height * 2.0 - 1.0)
    hit = (covered & valid).reshape(-1)
    sentinel = zbuf.shape[0] - 1  # the buffers' last slot absorbs misses
    pix = jnp.where(hit, (base + (cy * width + cx).astype(jnp.int32)).reshape(-1), sentinel)
    depth = jnp.where(hit, zw.reshape(-1), jnp.inf)
    new_z = zbuf.at[pix].min(depth)
    ids = jnp.where(new_z < zbuf, n_tri, ids)  # a strictly nearer hit replaces the old id
    tid = jnp.broadcast_to(tri_id_N[:, None], covered.shape).reshape(-1)
    cand = jnp.where(hit & (depth == new_z[pix]), tid, n_tri)
    return new_z, ids.at[pix].min(cand)


def _visible(tri_BxTx3x4: jax.Array, height: int, width: int, window: int, chunk: int):
    """Global triangle ids (B * H * W,) for the whole batch at once; B * T where empty.

    The batch shares one buffer of B * H * W pixels and one list of B * T triangles (global id
    b * T + t), so each loop below runs over the batch's triangles together.
    """
    b, t = tri_BxTx3x4.shape[:2]
    tri = tri_BxTx3x4.reshape(b * t, 3, 4)
    n_tri = b * t
    image = jnp.repeat(jnp.arange(b, dtype=jnp.int32), t)
    w = tri[..., 3]
    in_front = jnp.all(w > 0, axis=-1)
    ndc = tri[..., :2] / jnp.where(in_front[:, None, None], w[..., None], 1.0)
    x0, x1 = _pixel_range(ndc[..., 0].min(-1), ndc[..., 0].max(-1), width)
    y0, y1 = _pixel_range(ndc[..., 1].min(-1), ndc[..., 1].max(-1), height)
    empty = (x1 < x0) | (y1 < y0)
    size = jnp.maximum(x1 - x0, y1 - y0) + 1.0
    planes = triangle_planes(tri)
    n_pix = b * height * width
    zbuf = jnp.full(n_pix + 1, jnp.inf, tri.dtype)
    ids = jnp.full(n_pix + 1, n_tri, jnp.int32)

    # Level 0: every small triangle, statically. Then wider windows over chunks of the
    # triangles that need them (each a loop of as many chunks as it has members); the last
    # level is the whole screen, for the rest and for triangles with a vertex at w <= 0.
    small = in_front & ~empty & (size <= window)
    zbuf, ids = _splat(zbuf, ids, n_tri, jnp.arange(n_tri, dtype=jnp.int32), image, planes,
                       x0, y0, x1, y1, small, window, height, width)
    screen = max(height, width)
    levels = [w for w in LEVEL_WINDOWS if window < w < screen] + [screen]
    full = jnp.zeros_like(x0)
    lo = window
    for level_window in levels:
        if level_window == screen:
            member = ~in_front | (~empty & (size > lo))
            bx0, by0 = jnp.where(in_front, x0, full), jnp.where(in_front, y0, full)
            bx1 = jnp.where(in_front, x1, full + width - 1)
            by1 = jnp.where(in_front, y1, full + height - 1)
        else:
            member = in_front & ~empty & (size > lo) & (size <= level_window)
            bx0, by0, bx1, by1 = x0, y0, x1, y1
        k = max(1, min(chunk // level_window**2, n_tri))
        order = _padded_order(member, k)
        count = jnp.sum(member)

        def level_body(state, order=order, count=count, win=level_window, k=k,
                       box=(bx0, by0, bx1, by1)):
            c, zbuf, ids = state
            idx = jax.lax.dynamic_slice(order, (c * k,), (k,))
            live = (c * k + jnp.arange(k)) < count
            return (c + 1, *_splat(zbuf, ids, n_tri, idx, image[idx], planes[idx],
                                    *(b[idx] for b in box), live, win, height, width))

        n_chunks = (count + k - 1) // k
        _, zbuf, ids = jax.lax.while_loop(lambda s, n=n_chunks: s[0] < n, level_body,
                                          (0, zbuf, ids))
        lo = level_window
    return ids[:-1].reshape(b, -1)


@functools.partial(jax.jit, static_argnames=("resolution", "window", "chunk"))
def visible_triangles(pos_BxVx4: jax.Array, tri_Tx3: jax.Array, resolution: tuple[int, int],
                      window: int = WINDOW, chunk: int = CHUNK) -> jax.Array:
    """Id of the nearest covering triangle per pixel -> (B, H, W) int32, T where empty.

    Ties in depth go to the lower triangle id (every level merges by (depth, id)).
    """
    height, width = resolution
    pos = jax.lax.stop_gradient(pos_BxVx4)
    b, n_tri = pos.shape[0], tri_Tx3.shape[0]
    ids = _visible(pos[:, tri_Tx3], height, width, window, chunk)       # global ids (B, H*W)
    local = ids - (jnp.arange(b, dtype=jnp.int32) * n_tri)[:, None]
    return jnp.where(ids == b * n_tri, n_tri, local).reshape(b, height, width)
