import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.render import interpolate
from jaxface.render.uv import (
    displacement_normals,
    grid_faces,
    uv_orientation_flipped,
    uv_rasterize,
    world2uv,
)
from tests.finite_differences import assert_directional_derivative


def _texel_centres(size):
    """uv of every texel (S, S, 2): texel (i, j) at ((j + 0.5) / S, 1 - (i + 0.5) / S)."""
    c = (np.arange(size) + 0.5) / size
    return np.stack(np.meshgrid(c, 1.0 - c), -1)


def _uv_barycentrics(uv_tri_Tx3x2, point_2):
    """Barycentric coordinates (T, 3) of a point in every triangle of a 2-D layout."""
    a, b, c = uv_tri_Tx3x2[:, 0], uv_tri_Tx3x2[:, 1], uv_tri_Tx3x2[:, 2]
    cross = lambda p, q: p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]  # noqa: E731
    area = cross(b - a, c - a)
    l1 = cross(point_2 - a, c - a) / area
    l2 = cross(b - a, point_2 - a) / area
    return np.stack([1 - l1 - l2, l1, l2], -1)


def test_world2uv_matches_a_barycentric_reference(model, rng, x64):
    size = 64
    faces, uv_faces = np.asarray(model.faces), np.asarray(model.uv_faces)
    uvs = np.asarray(model.uvs, np.float64)
    uv_rast = uv_rasterize(jnp.asarray(uvs), jnp.asarray(uv_faces), size)
    attr = rng.normal(size=(2, model.v_template.shape[0], 3))
    got = np.asarray(world2uv(jnp.asarray(attr), uv_rast, jnp.asarray(faces)))
    got_uv, _ = interpolate(jnp.asarray(uvs), uv_rast, jnp.asarray(uv_faces))
    assert got.shape == (2, size, size, 3)

    centres = _texel_centres(size)
    uv_tri = uvs[uv_faces]
    counts = {"inside": 0, "outside": 0}
    for i, j in rng.integers(0, size, size=(400, 2)):
        lam = _uv_barycentrics(uv_tri, centres[i, j])
        inside = np.all(lam >= 0, axis=1)
        if not inside.any():
            counts["outside"] += 1
            np.testing.assert_array_equal(got[:, i, j], 0.0)
            continue
        t = np.flatnonzero(inside)[0]  # overlapping UV triangles: the lower id wins
        if lam[t].min() < 1e-6:
            continue  # the texel centre lies on an edge
        counts["inside"] += 1
        # The mesh's own faces name the corners' attributes (the synthetic head zips 14 UV
        # vertices to two mesh vertices each: UV vertex -> mesh vertex is not a function).
        want = np.einsum("k,bkc->bc", lam[t], attr[:, faces[t]])
        np.testing.assert_allclose(got[:, i, j], want, atol=1e-9)
        np.testing.assert_allclose(np.asarray(got_uv)[0, i, j], centres[i, j], atol=1e-9)
    assert counts["inside"] > 100 and counts["outside"] > 20, counts
    # Every covered texel (not only the sample): its value interpolates the corners of the
    # mesh triangle it shows, at the texel centre's barycentrics in that UV triangle.
    ids = np.asarray(uv_rast)[0, ..., 3].astype(int) - 1
    covered = ids >= 0
    tri = ids[covered]
    a, b, c = (uv_tri[tri, k] for k in range(3))
    p = centres[covered]
    cross = lambda u, v: u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]  # noqa: E731
    area = cross(b - a, c - a)
    l1, l2 = cross(p - a, c - a) / area, cross(b - a, p - a) / area
    lam = np.stack([1 - l1 - l2, l1, l2], -1)
    want = np.einsum("nk,bnkc->bnc", lam, attr[:, faces[tri]])
    clear = lam.min(-1) > 1e-6
    np.testing.assert_allclose(got[:, covered][:, clear], want[:, clear], atol=1e-9)


@pytest.mark.parametrize("flip", [False, True])
def test_grid_faces_tile_the_uv_square_with_one_winding(rng, flip):
    size = int(rng.integers(3, 10))
    uv = _texel_centres(size).reshape(-1, 2)
    faces = grid_faces(size, flip)
    tri = uv[faces]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    signed = 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    assert faces.shape == (2 * (size - 1) ** 2, 3) and faces.dtype == np.int32
    np.testing.assert_allclose(signed, (-1 if flip else 1) * 0.5 / size**2)
    assert len({tuple(sorted(f)) for f in faces}) == len(faces)


def _sheet(size, mirrored):
    """A flat UV-mapped sheet facing +z: world (x, y) = (u, v), or (-u, v) when mirrored."""
    uv = _texel_centres(size)
    x = -uv[..., 0] if mirrored else uv[..., 0]
    pos = np.stack([x, uv[..., 1], np.zeros_like(x)], -1)
    normals = np.broadcast_to([0.0, 0.0, 1.0], pos.shape)
    return uv, pos, normals


@pytest.mark.parametrize("mirrored", [False, True])
def test_displacement_normals_of_a_sloped_displacement(rng, x64, mirrored):
    """A displacement c u + d v lifts the sheet to z = c u + d v, a plane whose normal is
    (-c, -d, 1) / norm, or (c, -d, 1) when the layout mirrors x = -u; unmasked texels keep the
    coarse normal."""
    size = 12
    c, d = rng.normal(size=2)
    uv, pos, normals = _sheet(size, mirrored)
    disp = (c * uv[..., 0] + d * uv[..., 1])[..., None]
    mask = np.ones((size, size, 1))
    mask[:, : size // 3] = 0.0
    got = np.asarray(displacement_normals(jnp.asarray(pos[None]), jnp.asarray(normals[None]),
                                          jnp.asarray(disp[None]), jnp.asarray(mask),
                                          uv_flipped=mirrored))[0]
    want = np.array([c if mirrored else -c, -d, 1.0]) / np.sqrt(1 + c * c + d * d)
    # Texels whose whole neighbourhood is displaced lie on the plane.
    lifted = got[:, size // 3 + 1:]
    np.testing.assert_allclose(lifted, np.broadcast_to(want, lifted.shape), atol=1e-12)
    np.testing.assert_array_equal(got[:, : size // 3], normals[:, : size // 3])


def test_displacement_normals_gradient_matches_finite_differences(rng, x64):
    size = 6
    _, pos, normals = _sheet(size, False)
    pos = pos + 0.05 * rng.normal(size=pos.shape)
    disp = jnp.asarray(0.1 * rng.normal(size=(1, size, size, 1)))
    mask = jnp.asarray((rng.uniform(size=(size, size, 1)) > 0.3).astype(float))
    weights = jnp.asarray(rng.normal(size=(1, size, size, 3)))

    def loss(dsp):
        n = displacement_normals(jnp.asarray(pos[None]), jnp.asarray(normals[None]), dsp, mask,
                                 uv_flipped=False)
        return jnp.sum(n * weights)

    grad = jax.grad(loss)(disp)
    for _ in range(3):
        assert_directional_derivative(loss, disp, grad, rng.normal(size=disp.shape), eps=1e-6)


def test_uv_orientation_of_a_mirrored_layout(model):
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise seen from +z
    assert not uv_orientation_flipped(square[:, :2], faces)
    assert uv_orientation_flipped(square[:, :2] * [-1, 1], faces)
    assert not uv_orientation_flipped(np.asarray(model.uvs), np.asarray(model.uv_faces))


def test_vertices_in_uv_mask_against_a_loop(rng):
    from jaxface.render.uv import vertices_in_uv_mask

    n_v, n_vt, n_t, size = 30, 40, 50, 8
    faces = rng.integers(0, n_v, size=(n_t, 3))
    uv_faces = rng.integers(0, n_vt, size=(n_t, 3))
    uv = rng.uniform(size=(n_vt, 2))
    mask = (rng.uniform(size=(size, size, 1)) > 0.5).astype(np.float32)
    want = np.zeros(n_v, bool)
    for t in range(n_t):
        for k in range(3):
            u, v = uv[uv_faces[t, k]]
            row, col = min(int((1 - v) * size), size - 1), min(int(u * size), size - 1)
            want[faces[t, k]] |= mask[row, col, 0] > 0.5
    got = vertices_in_uv_mask(jnp.asarray(mask), jnp.asarray(faces), jnp.asarray(uv),
                              jnp.asarray(uv_faces), n_v)
    np.testing.assert_array_equal(np.asarray(got), want)
