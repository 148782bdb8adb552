import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.losses import (
    displacement_l1,
    group_swap_permutation,
    regularization,
    soft_symmetry,
    swap_within_groups,
)


def test_regularizers_have_decas_normalisation(rng, x64):
    """Written from DECA's trainer: shape_reg = sum(shape**2) / 2 * reg_shape (over the whole
    batch), z_reg = mean(|uv_z|) * reg_z, z_sym = (mask * |uv_z - flip(uv_z)|).sum() * reg_sym."""
    b = int(rng.integers(1, 6))
    beta, psi, alpha = rng.normal(size=(b, 10)), rng.normal(size=(b, 5)), rng.normal(size=(b, 7))
    w = rng.uniform(size=3)
    want = (w[0] * np.sum(beta**2) / 2 + w[1] * np.sum(psi**2) / 2 + w[2] * np.sum(alpha**2) / 2)
    got = regularization(jnp.asarray(beta), jnp.asarray(psi), jnp.asarray(alpha), *w)
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
    # On one device of four, each with a quarter of the batch: scaled to the global sum.
    quarter = regularization(jnp.asarray(beta), jnp.asarray(psi), jnp.asarray(alpha), *w,
                             batch_scale=4.0)
    np.testing.assert_allclose(float(quarter), 4 * want, rtol=1e-12)
    disp = rng.normal(size=(b, 8, 8, 1))
    mask = (rng.uniform(size=(8, 8, 1)) > 0.5).astype(float)
    np.testing.assert_allclose(float(displacement_l1(jnp.asarray(disp))), np.mean(np.abs(disp)),
                               rtol=1e-12)
    want_sym = np.sum(mask[None] * np.abs(disp - disp[:, :, ::-1]))
    np.testing.assert_allclose(float(soft_symmetry(jnp.asarray(disp), jnp.asarray(mask))),
                               want_sym, rtol=1e-12)
    symmetric = disp + disp[:, :, ::-1]
    assert float(soft_symmetry(jnp.asarray(symmetric), jnp.asarray(mask))) < 1e-12


def test_symmetry_gradient_treats_the_mirror_as_a_constant(rng, x64):
    """DECA detaches flip(D): the gradient is sign(D - flip(D)) under the mask, only."""
    disp = jnp.asarray(rng.normal(size=(2, 6, 6, 1)))
    mask = jnp.asarray((rng.uniform(size=(6, 6, 1)) > 0.3).astype(float))
    grad = np.asarray(jax.grad(lambda d: soft_symmetry(d, mask))(disp))
    want = np.asarray(mask)[None] * np.sign(np.asarray(disp - disp[:, :, ::-1]))
    np.testing.assert_allclose(grad, want, atol=1e-12)


def test_group_swaps_stay_within_identities(rng):
    k, groups = int(rng.integers(2, 5)), int(rng.integers(1, 5))
    perm = group_swap_permutation(k * groups, k)
    ids = np.arange(k * groups) // k
    assert np.all(ids[perm] == ids) and np.all(perm != np.arange(k * groups))
    assert sorted(perm) == list(range(k * groups))  # a permutation
    x = rng.normal(size=(k * groups, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(swap_within_groups(jnp.asarray(x), k)), x[perm])
    np.testing.assert_array_equal(group_swap_permutation(5, 1), np.arange(5))
    with pytest.raises(ValueError, match="not whole groups of 4"):
        group_swap_permutation(6, 4)
