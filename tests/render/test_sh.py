import jax.numpy as jnp
import numpy as np
from scipy.special import sph_harm_y

from jaxface.render import sh_basis, sh_shading


def _real_sh(l, m, polar, azimuth):
    """Real spherical harmonic Y_lm from SciPy's complex ones (z is the polar axis)."""
    y = sph_harm_y(l, abs(m), polar, azimuth)
    if m == 0:
        return y.real
    return np.sqrt(2) * (-1) ** m * (y.real if m > 0 else y.imag)


def test_basis_is_lambertian_filtered_real_sh(rng, x64):
    n = rng.normal(size=(500, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    polar, azimuth = np.arccos(n[:, 2]), np.arctan2(n[:, 1], n[:, 0])
    a1, a2 = 2 * np.pi / 3, np.pi / 4  # Lambertian kernel per band; band 0 kept at 1 as DECA
    # DECA's order: 1, x, y, z, xy, xz, yz, x^2 - y^2, 3z^2 - 1.
    lm = [(0, 0, 1), (1, 1, a1), (1, -1, a1), (1, 0, a1), (2, -2, a2), (2, 1, a2), (2, -1, a2),
          (2, 2, a2), (2, 0, a2)]
    want = np.stack([a * _real_sh(l, m, polar, azimuth) for l, m, a in lm], -1)
    np.testing.assert_allclose(np.asarray(sh_basis(jnp.asarray(n))), want, atol=1e-12)


def test_shading_is_the_weighted_sum_per_channel(rng, x64):
    n = rng.normal(size=(2, 5, 7, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    sh = rng.normal(size=(2, 9, 3))
    got = np.asarray(sh_shading(jnp.asarray(n), jnp.asarray(sh)))
    basis = np.asarray(sh_basis(jnp.asarray(n)))
    want = np.zeros((2, 5, 7, 3))
    for b in range(2):
        for c in range(3):
            want[b, ..., c] = basis[b] @ sh[b, :, c]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_ambient_light_is_uniform(rng):
    n = rng.normal(size=(1, 100, 3)).astype(np.float32)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    sh = np.zeros((1, 9, 3), np.float32)
    sh[0, 0] = [1.0, 2.0, 3.0]
    got = np.asarray(sh_shading(jnp.asarray(n), jnp.asarray(sh)))
    np.testing.assert_allclose(got, np.broadcast_to([1, 2, 3], got.shape) / np.sqrt(4 * np.pi),
                               rtol=1e-6)
