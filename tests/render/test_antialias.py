import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame
from jaxface.render import antialias, antialias_topology, interpolate, rasterize
from tests.render.antialias_reference import antialias_reference, opposite_vertices

H, W = 40, 56


def _globe(rng, n_lat=8, n_lon=12):
    """A closed latitude-longitude sphere, randomly rotated, counter-clockwise from outside."""
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack([np.sin(lat)[:, None] * np.cos(lon), np.sin(lat)[:, None] * np.sin(lon),
                     np.cos(lat)[:, None] * np.ones_like(lon)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]])
    faces = []
    for j in range(n_lon):
        k = (j + 1) % n_lon
        faces.append([0, 1 + j, 1 + k])
        last = 1 + (n_lat - 2) * n_lon
        faces.append([len(verts) - 1, last + k, last + j])
        for r in range(n_lat - 2):
            a, b = 1 + r * n_lon + j, 1 + r * n_lon + k
            faces += [[a, a + n_lon, b], [b, a + n_lon, b + n_lon]]
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return verts @ rotation.T, np.asarray(faces)


def _clip(points, rng, size=0.8):
    """Perspective clip-space positions of points (N, 3) placed in front of the camera."""
    shift = np.append(rng.uniform(-0.3, 0.3, 2), 0.0)
    p = points * size + shift
    w = 2.5 + p[:, 2]
    return np.concatenate([p[:, :2] * 2.0, (p[:, 2:3] * 0.3), w[:, None]], 1)


def _scene(rng):
    """Two globes, one partly in front of the other, and a few free triangles (all boundary)."""
    va, fa = _globe(rng)
    vb, fb = _globe(rng, 6, 10)
    soup = rng.normal(size=(9, 3)) * 0.5
    pos = np.concatenate([_clip(va, rng), _clip(vb, rng, 0.5) - [0, 0, 0.2, 0.3],
                          _clip(soup, rng)])
    faces = np.concatenate([fa, fb + len(va), np.arange(9).reshape(3, 3) + len(va) + len(vb)])
    return pos, faces


def test_topology_matches_edge_dictionary(rng, model):
    pos, faces = _scene(rng)
    faces = np.concatenate([faces, [[0, 1, 1]], faces[:1]])  # a degenerate and a 3-way edge
    np.testing.assert_array_equal(np.asarray(antialias_topology(jnp.asarray(faces))),
                                  opposite_vertices(faces))
    head = np.asarray(model.faces)
    got = np.asarray(antialias_topology(model.faces))
    np.testing.assert_array_equal(got, opposite_vertices(head))
    assert (got == -1).sum() > 0 and (got >= 0).mean() > 0.95  # the neck hole's rim


# The candidate pairs gathered (a budget above their count: 2000 of the ~2200 pairs per
# direction), every pair evaluated (a budget of 1, exceeded), and the default.
BUDGETS = pytest.mark.parametrize("pair_budget", [2000, 1, None])


@BUDGETS
def test_matches_reference_on_overlapping_meshes(rng, x64, pair_budget):
    pos, faces = _scene(rng)
    rast, _ = rasterize(jnp.asarray(pos[None]), jnp.asarray(faces, jnp.int32), (H, W))
    color = rng.uniform(size=(1, H, W, 3)) * (np.asarray(rast[..., 3:]) > 0)
    got = np.asarray(antialias(jnp.asarray(color), rast, jnp.asarray(pos[None]),
                               jnp.asarray(faces, jnp.int32), pair_budget=pair_budget))[0]
    want = antialias_reference(color[0], np.asarray(rast[0]), pos, faces)
    changed = np.any(want != color[0], -1)
    assert changed.sum() > 20  # not vacuous: many silhouette pixels blended (>= 40 in 300 seeds)
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_batch_and_float32_agree_with_per_image(rng):
    pos, faces = _scene(rng)
    pos2 = np.stack([pos, pos * [1.1, 0.9, 1, 1]]).astype(np.float32)
    tri = jnp.asarray(faces, jnp.int32)
    rast, _ = rasterize(jnp.asarray(pos2), tri, (H, W))
    color = jnp.asarray(rng.uniform(size=(2, H, W, 4)), jnp.float32)
    batch = jax.jit(antialias)(color, rast, jnp.asarray(pos2), tri)
    for i in range(2):
        single = antialias(color[i:i + 1], rast[i:i + 1], jnp.asarray(pos2[i]), tri)
        np.testing.assert_allclose(batch[i], single[0], atol=1e-5)  # jit's fusion vs eager
        want = antialias_reference(np.asarray(color[i]), np.asarray(rast[i]), pos2[i], faces)
        # float32 crossing points: a pair whose decision sits on a threshold may differ.
        close = np.all(np.abs(np.asarray(batch[i]) - want) < 1e-4, -1)
        assert close.mean() > 0.995


def _jacobian_by_rows(fn, x, rows_per_call=512):
    """jax.jacrev in chunks of output rows (the whole Jacobian at once would hold a vjp per
    output pixel of every pair) -> (outputs..., x's shape), NumPy."""
    out, vjp = jax.vjp(fn, x)
    pull = jax.jit(jax.vmap(lambda ct: vjp(ct.reshape(out.shape))[0]))
    rows = []
    for start in range(0, out.size, rows_per_call):
        index = np.arange(start, min(start + rows_per_call, out.size))
        one_hot = np.zeros((index.size, out.size), np.asarray(out).dtype)
        one_hot[np.arange(index.size), index] = 1.0
        rows.append(np.asarray(pull(jnp.asarray(one_hot))))
    return np.concatenate(rows).reshape(out.shape + x.shape)


@BUDGETS
def test_position_gradient_matches_finite_differences(rng, x64, pair_budget):
    pos, faces = _scene(rng)
    tri = jnp.asarray(faces, jnp.int32)
    rast, _ = rasterize(jnp.asarray(pos[None]), tri, (H, W))
    color = jnp.asarray(rng.uniform(size=(1, H, W, 2)))
    weights = jnp.asarray(rng.normal(size=(1, H, W, 2)))

    def per_pixel(p):  # rast and color held fixed: only the blend depends on positions here
        return antialias(color, rast, p[None], tri, pair_budget=pair_budget) * weights

    p0 = jnp.asarray(pos)
    grad = np.asarray(jax.grad(lambda p: jnp.sum(per_pixel(p)))(p0))
    assert np.count_nonzero(np.any(grad != 0, -1)) > 10
    jacobian = _jacobian_by_rows(per_pixel, p0)        # antialias has no forward mode
    for _ in range(3):
        d = rng.normal(size=pos.shape)
        terms = (jacobian.reshape(-1, d.size) @ d.reshape(-1)).reshape(H, W, 2)[None]
        np.testing.assert_allclose(np.sum(grad * d), terms.sum(), rtol=1e-10, atol=1e-10)
        # A pixel whose pair decision flips within eps of p0 jumps by a tiny amount (the blend
        # is ~0 where the decision sits), which the difference quotient divides by 2 eps
        # (seed 3634001560: 1.7e-7 / 2e-7 at one pixel). Such pixels are found by their
        # quotients at two step sizes disagreeing, and left out; they must be rare.
        fd, fd_small = ((np.asarray(per_pixel(p0 + eps * d)) - np.asarray(per_pixel(p0 - eps * d)))
                        / (2 * eps) for eps in (1e-7, 1e-8))
        smooth = np.abs(fd - fd_small) <= 1e-6 * (1 + np.abs(fd))
        active = np.count_nonzero(terms)
        assert np.count_nonzero(~smooth) <= max(2, 0.02 * active), (np.count_nonzero(~smooth),
                                                                    active)
        # nvdiffrast's 1e-3 px regulariser biases each pair's term by ~1e-3 / (edge extent).
        scale = np.abs(terms[smooth]).sum()
        assert abs(terms[smooth].sum() - fd[smooth].sum()) <= 2e-3 * scale, (
            terms[smooth].sum(), fd[smooth].sum(), scale)


def _strip(rng, vertical):
    """A white strip on black, two triangles, crossing the whole image (its corners and the
    ends of its diagonal far outside, so no pixel sees them) -> (pos (4, 4), faces, the strip's
    two edges in pixels along the axis across it). Edges are kept off pixel centres."""
    size = W if vertical else H
    while True:
        lo, hi = np.sort(rng.uniform(-0.8, 0.8, 2))
        edges = (np.array([lo, hi]) + 1) * size / 2
        if edges[1] - edges[0] > 4 and np.all(np.abs(edges % 1 - 0.5) > 0.02):
            break
    far = 50.0
    corners = np.array([[lo, -far], [hi, -far], [hi, far], [lo, far]])
    if not vertical:
        corners = corners[:, ::-1]
    pos = np.concatenate([corners, np.zeros((4, 1)), np.ones((4, 1))], 1)
    return pos, np.array([[0, 1, 2], [0, 2, 3]]), edges


@pytest.mark.parametrize("vertical", [True, False])
def test_moving_strip_covered_area_and_its_gradient(rng, x64, vertical):
    """A moving square's edge, isolated: the antialiased image sum of the strip is exactly its
    covered area (length L pixels across, N rows or columns along), and moving one edge by one
    pixel changes it by N, up to nvdiffrast's 1e-3 px regulariser over the edge's extent E:
    N E / (E + 1e-3)."""
    pos, faces, edges = _strip(rng, vertical)
    tri = jnp.asarray(faces, jnp.int32)

    def image_sum(p):
        rast, _ = rasterize(p[None], tri, (H, W))
        white, _ = interpolate(jnp.ones((4, 1)), rast, tri)
        return jnp.sum(antialias(white, rast, p[None], tri))

    n_along, size_across = (H, W) if vertical else (W, H)
    axis = 0 if vertical else 1
    p0 = jnp.asarray(pos)
    np.testing.assert_allclose(float(image_sum(p0)), n_along * (edges[1] - edges[0]), rtol=1e-12)
    grad = np.asarray(jax.grad(image_sum)(p0))[:, axis] * 2 / size_across  # per pixel
    extent = 100.0 * n_along / 2
    want = n_along * extent / (extent + 1e-3)
    np.testing.assert_allclose(grad[1] + grad[2], want, rtol=1e-9)  # the high edge
    np.testing.assert_allclose(grad[0] + grad[3], -want, rtol=1e-9)  # the low edge


@pytest.mark.parametrize("size", [64, 224])
def test_a_head_render_takes_the_compact_path(rng, model, size):
    """The default budget (1/16 of the pairs) holds the candidate pairs of a head turned up to
    70 degrees either way, so a face render evaluates a few percent of the pairs, not all."""
    aa = importlib.import_module("jaxface.render.antialias")
    b = 4
    pose = np.zeros((b, 15), np.float32)
    pose[:, :3] = rng.uniform(-1.2, 1.2, (b, 3)) * [0.3, 1.0, 0.2]
    verts = flame.forward(model, jnp.asarray(rng.normal(size=(b, model.n_shape)), jnp.float32),
                          jnp.zeros((b, model.n_expression)), jnp.asarray(pose)).vertices
    verts = 7.0 * (verts - jnp.array([0.0, -0.02, 0.0]))
    pos = jnp.concatenate([verts[..., :2], -0.5 * verts[..., 2:3], jnp.ones_like(verts[..., :1])],
                          -1)
    rast, _ = rasterize(pos, model.faces, (size, size))
    corners, silhouette = aa._screen_triangles(pos, model.faces, antialias_topology(model.faces),
                                               size, size)
    pixel_silhouette = aa._pixel_silhouette(rast, silhouette)
    for axis in (0, 1):
        n_pairs = b * size * (size - 1)
        budget = n_pairs // aa._PAIR_BUDGET_DIVISOR
        _, count = aa._compact_pairs(rast, pixel_silhouette, axis, budget)
        assert 0.002 * n_pairs < int(count) <= budget, (int(count), n_pairs)
