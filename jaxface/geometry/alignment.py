"""Rigid and similarity alignment of corresponding point sets (Kabsch / Umeyama), in JAX.

``x_aligned = scale * x @ R.T + t`` minimises sum_i w_i |x_aligned_i - y_i|^2 over rotations
R (det +1), translations t and, for a similarity, scales > 0. Used by the training evaluation
(shape error after alignment) and the NoW evaluation (landmark alignment).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Similarity(NamedTuple):
    """y ~ scale * x @ rotation.T + translation, batched: (B,), (B, 3, 3), (B, 3)."""

    scale: jax.Array
    rotation: jax.Array
    translation: jax.Array

    def apply(self, points_BxNx3: jax.Array) -> jax.Array:
        return (self.scale[:, None, None] * points_BxNx3 @ jnp.swapaxes(self.rotation, -1, -2)
                + self.translation[:, None, :])


def fit_similarity(source_BxNx3: jax.Array, target_BxNx3: jax.Array,
                   weights_BxN: jax.Array | None = None, with_scale: bool = True) -> Similarity:
    """The least-squares similarity (or rigid motion, ``with_scale=False``) taking each
    ``source`` point set onto its ``target`` (Umeyama 1991; the reflection case is excluded
    by flipping the smallest singular direction)."""
    if weights_BxN is None:
        weights_BxN = jnp.ones(source_BxNx3.shape[:2], source_BxNx3.dtype)
    w = weights_BxN / jnp.sum(weights_BxN, axis=1, keepdims=True)
    mu_x = jnp.einsum("bn,bnc->bc", w, source_BxNx3)
    mu_y = jnp.einsum("bn,bnc->bc", w, target_BxNx3)
    x = source_BxNx3 - mu_x[:, None]
    y = target_BxNx3 - mu_y[:, None]
    cov = jnp.einsum("bn,bni,bnj->bij", w, y, x)                   # (B, 3, 3) target x source
    u, s, vt = jnp.linalg.svd(cov)
    d = jnp.sign(jnp.linalg.det(u) * jnp.linalg.det(vt))
    d = jnp.where(d == 0, 1.0, d)
    flip = jnp.concatenate([jnp.ones_like(s[:, :2]), d[:, None]], axis=1)
    rotation = u @ (flip[:, :, None] * vt)
    if with_scale:
        var_x = jnp.einsum("bn,bnc->b", w, x * x)
        scale = jnp.sum(s * flip, axis=1) / var_x
    else:
        scale = jnp.ones(source_BxNx3.shape[0], source_BxNx3.dtype)
    translation = mu_y - scale[:, None] * jnp.einsum("bij,bj->bi", rotation, mu_x)
    return Similarity(scale, rotation, translation)


def aligned_distances(source_BxNx3: jax.Array, target_BxNx3: jax.Array,
                      with_scale: bool = False, weights_BxN: jax.Array | None = None
                      ) -> jax.Array:
    """Per-point distances (B, N) after aligning ``source`` onto ``target`` (rigid by
    default; on the ``weights``' points only, if given): the shape error of corresponding
    vertices, free of the global pose."""
    fit = fit_similarity(source_BxNx3, target_BxNx3, weights_BxN, with_scale=with_scale)
    return jnp.linalg.norm(fit.apply(source_BxNx3) - target_BxNx3, axis=-1)
