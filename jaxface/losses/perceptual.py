"""Feature-space losses: the identity cosine loss and ID-MRF (Wang et al. 2018), on features
from :mod:`jaxface.losses.nets`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.losses.photometric import safe_norm

MRF_BIAS = 1.0          # DECA's / the original's
MRF_SIGMA = 0.5         # bandwidth of the exponential ("nn_stretch_sigma")
MRF_EPS = 1e-5          # guards the division by the nearest distance
MRF_LAYERS = {"relu3_2": 1.0, "relu4_2": 2.0}  # 2 L_M(conv4_2) + L_M(conv3_2)


def identity_cosine(features_a_BxD: jax.Array, features_b_BxD: jax.Array) -> jax.Array:
    """L_id = 1 - cos(f(I), f(I_r)), batch mean."""
    na, nb = safe_norm(features_a_BxD), safe_norm(features_b_BxD)
    cos = jnp.sum(features_a_BxD * features_b_BxD, -1) / jnp.maximum(na * nb, 1e-12)
    return jnp.mean(1.0 - cos)


def id_mrf_layer(generated_BxHxWxC: jax.Array, target_BxHxWxC: jax.Array) -> jax.Array:
    """L_M for one feature layer, patch size 1 (DECA's ID-MRF), batch mean.

    Features are centred by the target's mean over channels at each position (as DECA does)
    and L2-normalised; d_ij = (1 - cos_ij) / 2 between generated position i and target
    position j; relative distances d_ij / (min_j d_ij + eps); similarities w_ij =
    exp((bias - relative) / sigma) normalised over j; each target position keeps its best
    match max_i w_ij; L_M = -log mean_j max_i w_ij.
    """
    b, h, w, c = generated_BxHxWxC.shape
    gen = generated_BxHxWxC.reshape(b, h * w, c)
    tar = target_BxHxWxC.reshape(b, -1, c)
    mean_t = jnp.mean(tar, axis=-1, keepdims=True)
    gen, tar = gen - mean_t, tar - mean_t
    gen = gen / jnp.maximum(safe_norm(gen), 1e-12)[..., None]
    tar = tar / jnp.maximum(safe_norm(tar), 1e-12)[..., None]
    cos = jnp.einsum("bic,bjc->bij", gen, tar)                        # (B, N_gen, N_tar)
    dist = (1.0 - cos) / 2.0
    relative = dist / (jnp.min(dist, axis=-1, keepdims=True) + MRF_EPS)
    sim = jnp.exp((MRF_BIAS - relative) / MRF_SIGMA)
    sim = sim / jnp.sum(sim, axis=-1, keepdims=True)
    best = jnp.max(sim, axis=1)                                       # (B, N_tar)
    return jnp.mean(-jnp.log(jnp.mean(best, axis=-1)))


def id_mrf(generated_features: dict[str, jax.Array],
           target_features: dict[str, jax.Array]) -> jax.Array:
    """L_mrf = 2 L_M(relu4_2) + L_M(relu3_2) on VGG19 features (``nets.vgg19_features``)."""
    return sum(weight * id_mrf_layer(generated_features[name], target_features[name])
               for name, weight in MRF_LAYERS.items())
