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


def test_regularizers_against_numpy(rng, x64):
    beta, psi, alpha = rng.normal(size=(4, 10)), rng.normal(size=(4, 5)), rng.normal(size=(4, 7))
    w = rng.uniform(size=3)
    want = (w[0] * np.mean((beta**2).sum(1)) + w[1] * np.mean((psi**2).sum(1))
            + w[2] * np.mean((alpha**2).sum(1)))
    got = regularization(jnp.asarray(beta), jnp.asarray(psi), jnp.asarray(alpha), *w)
    np.testing.assert_allclose(float(got), want, rtol=1e-12)
    disp = rng.normal(size=(3, 8, 8, 1))
    mask = (rng.uniform(size=(8, 8, 1)) > 0.5).astype(float)
    np.testing.assert_allclose(float(displacement_l1(jnp.asarray(disp))),
                               np.mean(np.abs(disp).sum((1, 2, 3))), rtol=1e-12)
    want_sym = np.mean([np.sum(np.abs(mask[..., 0] * (d[..., 0] - np.fliplr(d[..., 0]))))
                        for d in disp])
    np.testing.assert_allclose(float(soft_symmetry(jnp.asarray(disp), jnp.asarray(mask))),
                               want_sym, rtol=1e-12)
    symmetric = disp + disp[:, :, ::-1]
    assert float(soft_symmetry(jnp.asarray(symmetric), jnp.asarray(mask))) < 1e-12


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
