import jax
import numpy as np
from scipy.spatial.transform import Rotation

from jaxface.geometry.alignment import aligned_distances, fit_similarity


def _random_similarity(rng, b):
    rot = Rotation.random(b, random_state=rng.integers(1 << 31)).as_matrix()
    return rng.uniform(0.3, 3.0, b), rot, rng.normal(size=(b, 3))


def test_recovers_a_known_similarity_exactly(rng, x64):
    b, n = 4, 30
    x = rng.normal(size=(b, n, 3))
    scale, rot, t = _random_similarity(rng, b)
    y = scale[:, None, None] * np.einsum("bij,bnj->bni", rot, x) + t[:, None]
    fit = fit_similarity(x, y)
    np.testing.assert_allclose(fit.scale, scale, rtol=1e-10)
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-10)
    np.testing.assert_allclose(fit.translation, t, atol=1e-10)
    np.testing.assert_allclose(fit.apply(x), y, atol=1e-10)


def test_rigid_fit_keeps_unit_scale_and_never_reflects(rng, x64):
    b, n = 3, 20
    x = rng.normal(size=(b, n, 3))
    mirrored = x * np.array([-1.0, 1.0, 1.0])        # only a reflection maps x onto it
    fit = fit_similarity(x, mirrored, with_scale=False)
    np.testing.assert_allclose(fit.scale, 1.0)
    np.testing.assert_allclose(np.linalg.det(fit.rotation), 1.0, atol=1e-10)
    np.testing.assert_allclose(fit.rotation @ np.swapaxes(fit.rotation, 1, 2),
                               np.broadcast_to(np.eye(3), (b, 3, 3)), atol=1e-10)


def test_least_squares_optimality_against_perturbations(rng, x64):
    """The fitted rigid motion beats every small perturbation of it (a minimum)."""
    b, n = 1, 40
    x = rng.normal(size=(b, n, 3))
    _, rot, t = _random_similarity(rng, b)
    y = np.einsum("bij,bnj->bni", rot, x) + t[:, None] + 0.1 * rng.normal(size=(b, n, 3))
    fit = fit_similarity(x, y, with_scale=False)
    best = np.sum((np.asarray(fit.apply(x)) - y) ** 2)
    for _ in range(20):
        d_rot = Rotation.from_rotvec(rng.normal(size=3) * 1e-3).as_matrix()
        r = d_rot @ np.asarray(fit.rotation[0])
        tt = np.asarray(fit.translation[0]) + rng.normal(size=3) * 1e-3
        assert np.sum((x[0] @ r.T + tt - y[0]) ** 2) > best


def test_aligned_distances_ignore_pose_but_see_shape(rng):
    b, n = 2, 50
    x = rng.normal(size=(b, n, 3)).astype(np.float32)
    _, rot, t = _random_similarity(rng, b)
    offsets = rng.normal(size=(b, n, 3)).astype(np.float32) * 0.01
    y = np.einsum("bij,bnj->bni", rot, x + offsets) + t[:, None]
    d = np.asarray(jax.jit(aligned_distances)(x, y))
    assert d.shape == (b, n)
    # Aligned, the error is at most the offsets' size (the fit can only do better).
    assert np.mean(d) <= np.mean(np.linalg.norm(offsets, axis=-1)) * 1.001
    np.testing.assert_allclose(aligned_distances(x, np.einsum("bij,bnj->bni", rot, x)
                                                 + t[:, None]), 0.0, atol=1e-5)
