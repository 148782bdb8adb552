import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.render import interpolate, rasterize
from jaxface.render.visibility import pixel_centres
from tests.render.raster_reference import rasterize_reference

H, W = 48, 64  # not square, to catch swapped axes


def _random_triangles(rng, n, scale_px, perspective=True):
    """n triangles of roughly scale_px pixels at random places and depths, clip space."""
    centre = rng.uniform(-1.1, 1.1, size=(n, 1, 2))
    spread = rng.normal(size=(n, 3, 2)) * scale_px / W
    xy = centre + spread
    z = rng.uniform(-0.95, 0.95, size=(n, 3))
    w = rng.uniform(0.6, 1.8, size=(n, 3)) if perspective else np.ones((n, 3))
    pos = np.concatenate([xy * w[..., None], (z * w)[..., None], w[..., None]], -1)
    return pos.reshape(-1, 4), np.arange(3 * n).reshape(n, 3)


def _check_against_reference(pos_Vx4, tri, margin_tol=1e-5):
    rast, _ = jax.jit(rasterize, static_argnums=2)(jnp.asarray(pos_Vx4[None]),
                                                   jnp.asarray(tri, jnp.int32), (H, W))
    got = np.asarray(rast[0], np.float64)
    want, margin = rasterize_reference(pos_Vx4, tri, H, W)
    clear = margin > margin_tol
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(got[..., 3][clear], want[..., 3][clear])
    # float32 barycentrics: within 1e-5 but for rare tiny triangles, whose edge functions
    # lose relative precision as 1 / area (the float64 run agrees to 1e-12 everywhere).
    err = np.abs(got[..., :3][clear] - want[..., :3][clear]).max(-1)
    ids = want[..., 3][clear].astype(int)
    xy = pos_Vx4[:, :2] / pos_Vx4[:, 3:] * [W / 2, H / 2]
    c = xy[tri[np.maximum(ids - 1, 0)]]
    area_px = 0.5 * np.abs((c[:, 1, 0] - c[:, 0, 0]) * (c[:, 2, 1] - c[:, 0, 1])
                           - (c[:, 2, 0] - c[:, 0, 0]) * (c[:, 1, 1] - c[:, 0, 1]))
    bound = np.where(ids > 0, 2e-5 / np.minimum(1.0, np.maximum(area_px, 1e-3)), 1e-5)
    assert np.all(err <= bound), np.max(err / bound)
    # Off tiny triangles (area < 8 px²: the 3-px test draws hundreds), 1e-5 nearly always.
    sized = (ids == 0) | (area_px >= 8.0)
    assert np.mean(err[sized] <= 1e-5) >= 0.999, np.mean(err[sized] <= 1e-5)
    return got, want


@pytest.mark.parametrize("scale_px", [3, 12, 40])  # the fast, looped and whole-screen paths
def test_overlapping_random_triangles(rng, scale_px):
    pos, tri = _random_triangles(rng, 200 if scale_px < 5 else 40, scale_px)
    got, _ = _check_against_reference(pos, tri)
    assert (got[..., 3] > 0).mean() > 0.05


def test_screen_filling_triangles_and_depth_order(rng):
    quad = np.array([[-3, -3], [3, -3], [0, 4]], float)
    back = np.concatenate([quad, np.full((3, 1), 0.5), np.ones((3, 1))], 1)
    front = np.concatenate([quad * 0.9, np.full((3, 1), -0.2), np.ones((3, 1))], 1)
    small_pos, small_tri = _random_triangles(rng, 20, 5, perspective=False)
    pos = np.concatenate([back, front, small_pos])
    tri = np.concatenate([[[0, 1, 2], [3, 4, 5]], small_tri + 6])
    got, _ = _check_against_reference(pos, tri)
    assert np.all(got[..., 3] > 0)  # the big triangles cover every pixel


def test_degenerate_offscreen_and_behind_camera():
    pos = np.array([
        [-0.5, -0.5, 0.0, 1], [0.5, 0.5, 0.0, 1], [0.0, 0.0, 0.0, 1],      # collinear
        [2.0, 2.0, 0.0, 1], [3.0, 2.0, 0.0, 1], [2.5, 3.0, 0.0, 1],        # off-screen
        [-0.8, -0.8, 0.5, 1], [0.8, -0.6, 0.5, 1], [0.0, 0.9, -0.5, -0.5],  # one w < 0
        [-0.9, 0.9, 0.2, -1], [0.9, 0.9, 0.2, -1], [0.0, -0.9, 0.2, -1],   # all behind
    ])
    tri = np.arange(12).reshape(4, 3)
    got, want = _check_against_reference(pos, tri)
    ids = set(np.unique(got[..., 3]).astype(int))
    assert 1 not in ids and 2 not in ids and 4 not in ids
    assert 3 in ids  # the part of the straddling triangle in front of the camera is drawn


def test_flame_sized_batch_matches_per_image(model, rng):
    from jaxface import flame

    out = flame.forward(model, jnp.asarray(rng.normal(size=(3, 100)), jnp.float32),
                        jnp.zeros((3, 50)),
                        jnp.zeros((3, 15)).at[:, 1].set(jnp.asarray(rng.uniform(-.6, .6, 3))))
    v = out.vertices * 7.0
    pos = jnp.concatenate([v[..., :2], -0.2 * v[..., 2:3], jnp.ones_like(v[..., :1])], -1)
    batch = np.asarray(rasterize(pos, model.faces, (96, 80))[0])
    for i in range(3):
        single = np.asarray(rasterize(pos[i:i + 1], model.faces, (96, 80))[0])[0]
        np.testing.assert_array_equal(batch[i], single)
    assert 0.2 < (batch[..., 3] > 0).mean() < 0.9


def _pixel_safe_terms(rng, x64_pos, tri):
    """Weighted (u, v) per pixel, kept where the pixel's triangle does not change under small
    moves and is not so thin that nvdiffrast's gradient epsilon matters (|sum(a)| > 0.05: a bias
    below 2e-5 of each pixel's term)."""
    rast, _ = rasterize(jnp.asarray(x64_pos[None]), jnp.asarray(tri, jnp.int32), (H, W))
    want, margin = rasterize_reference(x64_pos, tri, H, W)
    ids = want[..., 3].astype(int)
    gx, gy = (np.asarray(c).reshape(H, W) for c in pixel_centres(H, W, jnp.float64))
    c = x64_pos[tri[np.maximum(ids - 1, 0)]]                        # (H, W, 3, 4)
    qx, qy = c[..., 0] - gx[..., None] * c[..., 3], c[..., 1] - gy[..., None] * c[..., 3]
    total = sum(qx[..., i] * qy[..., i - 2] - qy[..., i] * qx[..., i - 2] for i in range(3))
    keep = (margin > 1e-3) & (np.asarray(rast[0, ..., 3]) > 0) & (np.abs(total) > 0.05)
    keep = jnp.asarray(keep)
    weights = jnp.asarray(rng.normal(size=(H, W, 2)))

    def per_pixel(p):
        r, _ = rasterize(p[None], jnp.asarray(tri, jnp.int32), (H, W))
        return jnp.where(keep[..., None], r[0, ..., :2] * weights, 0.0)

    return per_pixel


def test_barycentric_gradient_matches_finite_differences(rng, x64):
    pos, tri = _random_triangles(rng, 12, 15)
    per_pixel = _pixel_safe_terms(rng, pos, tri)
    p0 = jnp.asarray(pos)
    grad = np.asarray(jax.grad(lambda p: jnp.sum(per_pixel(p)))(p0))
    assert np.any(grad != 0)
    for _ in range(3):
        d = rng.normal(size=pos.shape)
        eps = 1e-6
        fd = np.sum(per_pixel(p0 + eps * d) - per_pixel(p0 - eps * d)) / (2 * eps)
        # Pixels' terms may cancel in the sum; the bias of nvdiffrast's rule is relative to each
        # term, so the tolerance is relative to the sum of the terms' magnitudes.
        _, terms = jax.jvp(per_pixel, (p0,), (jnp.asarray(d),))
        scale = float(jnp.sum(jnp.abs(terms)))
        assert abs(np.sum(grad * d) - fd) <= 1e-4 * scale, (np.sum(grad * d), fd, scale)


def test_interpolate_against_reference_and_its_gradient(rng, x64):
    pos, tri = _random_triangles(rng, 25, 10)
    attr = rng.normal(size=(len(pos), 3))
    rast, _ = rasterize(jnp.asarray(pos[None]), jnp.asarray(tri, jnp.int32), (H, W))
    out, _ = interpolate(jnp.asarray(attr), rast, jnp.asarray(tri, jnp.int32))
    want, margin = rasterize_reference(pos, tri, H, W)
    ids = want[..., 3].astype(int)
    lam = np.stack([want[..., 0], want[..., 1], 1 - want[..., 0] - want[..., 1]], -1)
    expected = np.einsum("hwk,hwkc->hwc", lam, attr[tri[np.maximum(ids - 1, 0)]])
    expected[ids == 0] = 0
    clear = margin > 1e-5
    np.testing.assert_allclose(np.asarray(out[0])[clear], expected[clear], atol=1e-10)

    weights = jnp.asarray(rng.normal(size=out.shape))

    def loss(a):
        return jnp.sum(interpolate(a, rast, jnp.asarray(tri, jnp.int32))[0] * weights)

    grad = np.asarray(jax.grad(loss)(jnp.asarray(attr)))
    d = rng.normal(size=attr.shape)
    fd = (loss(jnp.asarray(attr + 1e-6 * d)) - loss(jnp.asarray(attr - 1e-6 * d))) / 2e-6
    np.testing.assert_allclose(np.sum(grad * d), float(fd), rtol=1e-7)


def test_rast_db_is_the_pixel_derivative_of_the_barycentrics(rng, x64):
    pos, tri = _random_triangles(rng, 6, 25)
    rast, db = rasterize(jnp.asarray(pos[None]), jnp.asarray(tri, jnp.int32), (H, W),
                         grad_db=True)
    ids = np.asarray(rast[0, ..., 3]).astype(int)
    i, j = np.argwhere(ids > 0)[len(np.argwhere(ids > 0)) // 2]
    p = pos[tri[ids[i, j] - 1]]

    def bary(x, y):  # solve the homogeneous system at a continuous pixel position
        m = np.stack([p[:, 0] - x * p[:, 3], p[:, 1] - y * p[:, 3], np.ones(3)])
        return np.linalg.solve(m, [0, 0, 1.0])

    x, y = (j + 0.5) / W * 2 - 1, (i + 0.5) / H * 2 - 1
    h = 1e-4
    d_dx = (bary(x + h * 2 / W, y) - bary(x - h * 2 / W, y)) / (2 * h)  # per pixel right
    d_dy = (bary(x, y + h * 2 / H) - bary(x, y - h * 2 / H)) / (2 * h)  # per row
    np.testing.assert_allclose(np.asarray(db[0, i, j]), [d_dx[0], d_dy[0], d_dx[1], d_dy[1]],
                               rtol=1e-5, atol=1e-9)
