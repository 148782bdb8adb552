"""Parameter regularisers and the identity-group swaps of the consistency losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def regularization(shape_BxS: jax.Array, expression_BxE: jax.Array, albedo_BxA: jax.Array,
                   w_shape: float, w_expression: float, w_albedo: float,
                   batch_scale: float = 1.0) -> jax.Array:
    """L_reg = w_id ||beta||^2 + w_exp ||psi||^2 + w_tex ||alpha||^2 with DECA's
    normalisation: each squared norm summed over the batch and halved
    (``sum(shape**2) / 2 * reg_shape``), so at DECA's weights it grows with the batch.

    ``batch_scale``: the global batch over this one (a data-parallel device's share is
    scaled up to the global sum; the step then averages the devices' losses).
    """
    def half_sum(x):
        return jnp.sum(x**2) / 2.0

    return batch_scale * (w_shape * half_sum(shape_BxS) + w_expression * half_sum(expression_BxE)
                          + w_albedo * half_sum(albedo_BxA))


def displacement_l1(displacement_BxSxSx1: jax.Array) -> jax.Array:
    """L_regD = ||D||_{1,1} with DECA's normalisation: the mean of |D| over the batch and
    every texel of the map (DECA's ``mean(|uv_z|) * reg_z`` on the decoder's raw output)."""
    return jnp.mean(jnp.abs(displacement_BxSxSx1))


def soft_symmetry(displacement_BxSxSx1: jax.Array, uv_face_mask_SxSx1: jax.Array,
                  batch_scale: float = 1.0) -> jax.Array:
    """L_sym = ||V_uv * (D - flip(D))||_{1,1}, flip mirroring u (the UV map's columns;
    FLAME's layout is left-right symmetric about u = 0.5), with DECA's normalisation: summed
    over the texels and the batch, the mirrored map a constant (DECA's ``(mask * (uv_z -
    flip(uv_z).detach()).abs()).sum() * reg_sym``). ``batch_scale``: as
    :func:`regularization`'s."""
    mirrored = jax.lax.stop_gradient(displacement_BxSxSx1[:, :, ::-1])
    return batch_scale * jnp.sum(jnp.abs(uv_face_mask_SxSx1 * (displacement_BxSxSx1 - mirrored)))


def group_swap_permutation(batch: int, group_size: int) -> np.ndarray:
    """The batch holds batch / K identities as consecutive groups of K images; image i takes
    its parameters from the next image of its own group (cyclically). With K = 1 it is the
    identity. -> (batch,) int indices, static."""
    if group_size < 1 or batch % group_size:
        raise ValueError(f"batch {batch} is not whole groups of {group_size} images per "
                         "identity (the shape/detail consistency losses need them)")
    i = np.arange(batch)
    return (i // group_size) * group_size + (i % group_size + 1) % group_size


def swap_within_groups(x_BxN: jax.Array, group_size: int) -> jax.Array:
    """x permuted by :func:`group_swap_permutation` (L_sc swaps beta, L_dc swaps delta)."""
    return x_BxN[group_swap_permutation(x_BxN.shape[0], group_size)]


def parameter_supervision(pred: dict, truth: dict) -> jax.Array:
    """Mean squared error of the predicted FLAME identity, expression and pose (global +
    jaw) against ground truth — for synthetic data only (``loss.ground_truth``; the paper
    trains without it). ``truth`` holds FLAME's ``shape``, ``expression`` and full 15-value
    ``pose``; each group is averaged over its components, then summed."""
    pose = jnp.concatenate([truth["pose"][..., :3], truth["pose"][..., 6:9]], -1)
    n_shape, n_exp = pred["shape"].shape[-1], pred["exp"].shape[-1]
    return (jnp.mean((pred["shape"] - truth["shape"][..., :n_shape]) ** 2)
            + jnp.mean((pred["exp"] - truth["expression"][..., :n_exp]) ** 2)
            + jnp.mean((pred["pose"] - pose) ** 2))
