import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial import ConvexHull

from jaxface.geometry import face_normals, safe_normalize, vertex_normals


def _sphere(rng, n=2000):
    """A near-uniform sphere mesh (a Fibonacci lattice, randomly rotated and slightly jittered),
    counter-clockwise seen from outside. Uniform random points would give sliver triangles whose
    area-weighted normals stray by more than the bound tested."""
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5**0.5) * k
    p = np.stack([np.sqrt(1 - z**2) * np.cos(phi), np.sqrt(1 - z**2) * np.sin(phi), z], 1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    p = p @ rotation.T + rng.normal(size=p.shape) * 0.1 * np.sqrt(4 / n)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    faces = ConvexHull(p).simplices
    tri = p[faces]
    flip = np.einsum("fi,fi->f", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                     tri.mean(1)) < 0
    faces[flip] = faces[flip][:, ::-1]
    return p, faces


def test_sphere_normals_point_outward(rng, x64):
    p, faces = _sphere(rng)
    radius, centre = 0.7, np.array([0.3, -1.0, 2.0])
    verts = centre + radius * p
    n = np.asarray(vertex_normals(jnp.asarray(verts[None]), jnp.asarray(faces)))[0]
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-12)
    assert np.min(np.einsum("vi,vi->v", n, p)) > 0.998


def test_vertex_normals_against_numpy(rng, x64):
    verts = rng.normal(size=(2, 40, 3))
    faces = np.stack([rng.permutation(40)[:3] for _ in range(60)])
    want = np.zeros_like(verts)
    for b in range(2):
        for f in faces:
            a, c, d = verts[b, f]
            np.add.at(want[b], f, np.cross(c - a, d - a))
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    got = np.asarray(vertex_normals(jnp.asarray(verts), jnp.asarray(faces)))
    used = np.isin(np.arange(40), faces)
    np.testing.assert_allclose(got[:, used], want[:, used], atol=1e-12)
    np.testing.assert_array_equal(got[:, ~used], 0.0)


def test_face_normal_length_is_twice_the_area(x64):
    verts = jnp.asarray([[[0.0, 0, 0], [2, 0, 0], [0, 3, 0]]])
    n = np.asarray(face_normals(verts, jnp.asarray([[0, 1, 2]])))[0, 0]
    np.testing.assert_allclose(n, [0, 0, 6.0])


def test_safe_normalize_gradient_is_finite_at_zero():
    g = jax.grad(lambda v: jnp.sum(safe_normalize(v)))(jnp.zeros(3))
    assert np.all(np.isfinite(np.asarray(g)))
