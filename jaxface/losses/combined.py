"""The coarse and detail objectives: the named terms of SPEC sections 4-5, weighted by the
config (``configs/losses.py``); every term is a jit-able function of arrays.

The terms that re-render with parameters swapped inside identity groups (L_sc, L_dc) are the
train step's: it calls :func:`coarse_loss` / :func:`detail_loss` again on the swapped render
(:func:`~jaxface.losses.regularization.swap_within_groups`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.losses.landmarks import deca_landmark_weights, eye_closure, landmark_l1
from jaxface.losses.perceptual import id_mrf, identity_cosine
from jaxface.losses.photometric import face_mask_photometric, pixel_loss, structural_consistency
from jaxface.losses.regularization import displacement_l1, regularization, soft_symmetry


def weighted_total(terms: dict[str, jax.Array], weights: dict[str, float]) -> jax.Array:
    """sum_k weights[k] terms[k] over the terms present (a term with weight 0 is skipped)."""
    return sum((weights[k] * v for k, v in terms.items() if weights[k] != 0),
               jnp.zeros((), jnp.float32))


def coarse_terms(loss_cfg, image: jax.Array, rendered: jax.Array, face_mask: jax.Array,
                 landmarks_pred: jax.Array, landmarks_target: jax.Array,
                 params: dict[str, jax.Array], identity_image: jax.Array | None = None,
                 identity_rendered: jax.Array | None = None,
                 batch_scale: float = 1.0) -> dict[str, jax.Array]:
    """The coarse loss's named terms (only those with a non-zero weight).

    Args:
      image, rendered: (B, H, W, 3) the input and the render composited over it.
      face_mask: (B, H, W, 1) the face-mask prior rho.
      landmarks_pred, landmarks_target: (B, 68, 2), same units (e.g. ndc).
      params: :func:`~jaxface.models.decode_params` output (shape, exp, tex used).
      identity_image, identity_rendered: identity descriptors (B, D) when L_id is on.
      batch_scale: the global batch over this one, for L_reg's batch sum (DECA's).
    """
    w = loss_cfg
    terms = {}
    if w.pixel:
        terms["pixel"] = pixel_loss(image, rendered, w.pixel_norm)
    if w.mask:
        terms["mask"] = face_mask_photometric(image, rendered, face_mask)
    if w.landmark:
        weights = deca_landmark_weights() if w.deca_landmark_weights else None
        terms["landmark"] = landmark_l1(landmarks_pred, landmarks_target, weights)
    if w.eye:
        terms["eye"] = eye_closure(landmarks_pred, landmarks_target)
    if w.scl:
        terms["scl"] = structural_consistency(image, rendered, face_mask)
    if w.identity:
        if identity_image is None or identity_rendered is None:
            raise ValueError("loss.identity > 0 needs the identity descriptors")
        terms["identity"] = identity_cosine(identity_image, identity_rendered)
    terms["reg"] = regularization(params["shape"], params["exp"], params["tex"],
                                  w.reg_shape, w.reg_expression, w.reg_albedo, batch_scale)
    return terms


def coarse_loss(loss_cfg, *args, **kwargs) -> tuple[jax.Array, dict[str, jax.Array]]:
    """-> (weighted total, named terms) of :func:`coarse_terms`."""
    terms = coarse_terms(loss_cfg, *args, **kwargs)
    weights = {k: getattr(loss_cfg, k) for k in terms if k != "reg"} | {"reg": 1.0}
    return weighted_total(terms, weights), terms


def detail_terms(loss_cfg, image: jax.Array, rendered_detail: jax.Array,
                 face_mask: jax.Array, displacement: jax.Array, uv_face_mask: jax.Array,
                 vgg_image: dict[str, jax.Array] | None = None,
                 vgg_rendered: dict[str, jax.Array] | None = None,
                 batch_scale: float = 1.0) -> dict[str, jax.Array]:
    """The detail loss's named terms: ID-MRF on VGG19 features of the face region, DECA's
    photometric term on the detail render, soft symmetry under the UV face mask (S, S, 1)
    and the L1 size of F_d's displacement map (B, S, S, 1), with DECA's normalisations
    (``batch_scale``: the global batch over this one, for L_sym's batch sum)."""
    w = loss_cfg
    terms = {}
    if w.mrf:
        if vgg_image is None or vgg_rendered is None:
            raise ValueError("loss.mrf > 0 needs VGG19 features of both images")
        terms["mrf"] = id_mrf(vgg_rendered, vgg_image)
    if w.detail_photometric:
        terms["detail_photometric"] = face_mask_photometric(image, rendered_detail, face_mask)
    if w.symmetry:
        terms["symmetry"] = soft_symmetry(displacement, uv_face_mask, batch_scale)
    if w.displacement:
        terms["displacement"] = displacement_l1(displacement)
    return terms


def detail_loss(loss_cfg, *args, **kwargs) -> tuple[jax.Array, dict[str, jax.Array]]:
    """-> (weighted total, named terms) of :func:`detail_terms`."""
    terms = detail_terms(loss_cfg, *args, **kwargs)
    return weighted_total(terms, {k: getattr(loss_cfg, k) for k in terms}), terms
