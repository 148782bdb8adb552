import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from jaxface.flame.rotation import rodrigues, skew, yaw_degrees


def test_rodrigues_matches_scipy(rng, x64):
    angles = np.concatenate([rng.uniform(0, np.pi, 64), [0.0, 1e-9, 1e-6, 1e-4, 3.1]])
    axes = rng.normal(size=(len(angles), 3))
    rotvec = axes / np.linalg.norm(axes, axis=1, keepdims=True) * angles[:, None]
    got = np.asarray(rodrigues(jnp.asarray(rotvec)))
    want = Rotation.from_rotvec(rotvec).as_matrix()
    np.testing.assert_allclose(got, want, atol=1e-13)


def test_rodrigues_float32_is_orthonormal(rng):
    r = rodrigues(jnp.asarray(rng.normal(size=(100, 3)), jnp.float32))
    assert r.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(r @ jnp.swapaxes(r, -1, -2)),
                               np.broadcast_to(np.eye(3), (100, 3, 3)), atol=2e-6)


def test_rodrigues_jacobian_at_zero_is_skew(x64):
    jac = jax.jacobian(rodrigues)(jnp.zeros(3))  # (3, 3, 3): d R[m, n] / d r[i]
    assert np.all(np.isfinite(np.asarray(jac)))
    for i in range(3):
        np.testing.assert_allclose(np.asarray(jac[..., i]), np.asarray(skew(jnp.eye(3)[i])),
                                   atol=1e-15)


def test_rodrigues_gradient_matches_finite_differences(rng, x64):
    weights = jnp.asarray(rng.normal(size=(3, 3)))

    def loss(r):
        return jnp.sum(rodrigues(r) * weights)

    for r in [rng.normal(size=3), rng.normal(size=3) * 1e-5, rng.normal(size=3) * 3.0]:
        grad = np.asarray(jax.grad(loss)(jnp.asarray(r)))
        eps = 1e-6
        fd = [(loss(jnp.asarray(r + eps * e)) - loss(jnp.asarray(r - eps * e))) / (2 * eps)
              for e in np.eye(3)]
        np.testing.assert_allclose(grad, np.asarray(fd), rtol=1e-6, atol=1e-8)


def test_yaw_degrees_is_the_y_angle_of_zyx_euler(rng, x64):
    angles = rng.uniform(-80, 80, size=(50, 3))  # intrinsic z, y, x angles in degrees
    mats = Rotation.from_euler("ZYX", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(np.asarray(yaw_degrees(jnp.asarray(mats))), angles[:, 1],
                               atol=1e-10)
