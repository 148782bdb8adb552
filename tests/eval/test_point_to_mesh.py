import numpy as np

from jaxface.eval.point_to_mesh import (
    point_to_mesh_distance,
    point_triangle_distance,
)


def _segment_distance(p, a, b):
    t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-300), 0.0, 1.0)
    return np.linalg.norm(p - (a + t * (b - a)))


def reference_distance(p, a, b, c):
    """float64: the plane distance when p projects inside the triangle (barycentrics by
    solving the 2x2 normal equations), else the nearest of the three edges."""
    e0, e1 = b - a, c - a
    gram = np.array([[e0 @ e0, e0 @ e1], [e0 @ e1, e1 @ e1]])
    if abs(np.linalg.det(gram)) > 1e-18:
        v, w = np.linalg.solve(gram, [e0 @ (p - a), e1 @ (p - a)])
        if v >= 0 and w >= 0 and v + w <= 1:
            return np.linalg.norm(p - (a + v * e0 + w * e1))
    return min(_segment_distance(p, a, b), _segment_distance(p, b, c), _segment_distance(p, c, a))


def test_closed_forms(x64):
    a, b, c = np.array([0.0, 0, 0]), np.array([2.0, 0, 0]), np.array([0.0, 2, 0])
    cases = {
        (0.5, 0.5, 3.0): 3.0,                         # above the interior: the height
        (1.0, -1.0, 0.0): 1.0,                        # beside edge ab, in its plane
        (1.0, -1.0, 2.0): np.sqrt(5.0),               # beside edge ab, off the plane
        (2.0, 2.0, 0.0): np.sqrt(2.0),                # beyond the hypotenuse bc
        (-1.0, -1.0, 1.0): np.sqrt(3.0),              # nearest to vertex a
        (3.0, -1.0, 0.0): np.sqrt(2.0),               # nearest to vertex b
    }
    for p, expected in cases.items():
        d = point_triangle_distance(np.array([p]), a[None], b[None], c[None])
        np.testing.assert_allclose(d, [expected], rtol=1e-12)


def test_random_pairs_against_the_float64_reference(rng, x64):
    n = 2000
    tri = rng.normal(size=(n, 3, 3))
    tri[: n // 10, 2] = tri[: n // 10, 0] + 1e-3 * rng.normal(size=(n // 10, 3))   # slivers
    p = rng.normal(size=(n, 3)) * 2
    d = np.asarray(point_triangle_distance(p, tri[:, 0], tri[:, 1], tri[:, 2]))
    ref = np.array([reference_distance(p[i], *tri[i]) for i in range(n)])
    np.testing.assert_allclose(d, ref, rtol=1e-9, atol=1e-12)


def test_mesh_distance_is_exact_against_brute_force(model, rng):
    verts = np.asarray(model.v_template, np.float64)
    faces = np.asarray(model.faces)
    span = np.ptp(verts, axis=0)
    near = verts[rng.integers(0, len(verts), 300)] + rng.normal(size=(300, 3)) * 0.002
    far = verts.mean(0) + rng.uniform(-1.5, 1.5, size=(60, 3)) * span   # needs the fallback
    points = np.concatenate([near, far])
    got = point_to_mesh_distance(points.astype(np.float32), verts.astype(np.float32), faces,
                                 chunk=128)
    tri = verts[faces]
    # Every point, against the exact per-triangle minimum (vectorised float64 numpy).
    full = np.array([np.min(_vectorised_reference(p, tri)) for p in points])
    np.testing.assert_allclose(got, full, atol=2e-6, rtol=1e-5)


def _vectorised_reference(p, tri):
    """Distances from p to every triangle: min over plane-inside and edge distances."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    def seg(u, v):
        t = np.clip(np.einsum("ij,ij->i", p - u, v - u) / np.einsum("ij,ij->i", v - u, v - u),
                    0, 1)
        return np.linalg.norm(p - (u + t[:, None] * (v - u)), axis=1)
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    h = np.einsum("ij,ij->i", p - a, n)
    q = p - h[:, None] * n
    inside = np.ones(len(tri), bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("ij,ij->i", np.cross(v - u, q - u), n) >= 0
    return np.where(inside, np.abs(h), np.minimum(np.minimum(seg(a, b), seg(b, c)), seg(c, a)))
