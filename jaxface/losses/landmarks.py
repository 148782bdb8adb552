"""Landmark losses on 2-D landmarks (B, 68, 2) in any consistent unit (DECA: ndc in [-1, 1])."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# The 68-point scheme's upper and lower eyelid points, paired (0-based): left eye 37-41,
# 38-40; right eye 43-47, 44-46.
EYELID_UPPER = np.array([37, 38, 43, 44])
EYELID_LOWER = np.array([41, 40, 47, 46])


def deca_landmark_weights() -> np.ndarray:
    """DECA's per-point weights (68,): jaw corners 2, nose 1.5 (tip and nostrils 3), mouth
    1.5 (corners 3); everything else 1."""
    w = np.ones(68, np.float32)
    w[5:7] = w[10:12] = 2.0
    w[27:36] = 1.5
    w[[30, 31, 35]] = 3.0
    w[48:68] = 1.5
    w[[48, 54]] = 3.0
    return w


def landmark_l1(predicted_BxLx2: jax.Array, target_BxLx2: jax.Array,
                weights_L: jax.Array | None = None) -> jax.Array:
    """L_kp: the L1 distance |dx| + |dy| per landmark, weighted and averaged over landmarks
    (sum w_i |.| / sum w_i), then over the batch."""
    per_point = jnp.sum(jnp.abs(predicted_BxLx2 - target_BxLx2), axis=-1)    # (B, L)
    if weights_L is None:
        return jnp.mean(per_point)
    w = jnp.asarray(weights_L, per_point.dtype)
    return jnp.mean(jnp.sum(per_point * w, axis=-1) / jnp.sum(w))


def eye_closure(predicted_BxLx2: jax.Array, target_BxLx2: jax.Array) -> jax.Array:
    """L_eye = ||(k_i - k_h) - (p_i - p_h)||_1 over the eyelid pairs (upper i, lower h): the
    predicted eyelid offsets p match the detected ones k (the paper's form; DECA compares
    the pairs' Euclidean distances instead). Averaged over pairs and batch."""
    def opening(lmk):
        return lmk[:, EYELID_UPPER] - lmk[:, EYELID_LOWER]             # (B, 4, 2)
    diff = opening(target_BxLx2) - opening(predicted_BxLx2)
    return jnp.mean(jnp.sum(jnp.abs(diff), axis=-1))
