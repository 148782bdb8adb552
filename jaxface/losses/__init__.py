"""The coarse and detail losses as pure, jit-able functions of arrays (SPEC sections 4-5)."""

from jaxface.losses.combined import (
    coarse_loss,
    coarse_terms,
    detail_loss,
    detail_terms,
    weighted_total,
)
from jaxface.losses.identity import IdentityNetwork, identity_network
from jaxface.losses.landmarks import (
    EYELID_LOWER,
    EYELID_UPPER,
    deca_landmark_weights,
    eye_closure,
    landmark_l1,
)
from jaxface.losses.perceptual import id_mrf, id_mrf_layer, identity_cosine
from jaxface.losses.photometric import (
    face_mask_photometric,
    pixel_loss,
    safe_norm,
    structural_consistency,
)
from jaxface.losses.regularization import (
    displacement_l1,
    group_swap_permutation,
    parameter_supervision,
    regularization,
    soft_symmetry,
    swap_within_groups,
)

__all__ = [
    "EYELID_LOWER", "EYELID_UPPER", "IdentityNetwork", "coarse_loss", "coarse_terms",
    "deca_landmark_weights", "detail_loss", "detail_terms", "displacement_l1", "eye_closure",
    "face_mask_photometric", "group_swap_permutation", "id_mrf", "id_mrf_layer",
    "identity_cosine", "landmark_l1", "parameter_supervision", "pixel_loss", "regularization",
    "safe_norm",
    "identity_network", "soft_symmetry", "structural_consistency", "swap_within_groups",
    "weighted_total",
]
