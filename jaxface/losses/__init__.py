"""The coarse and detail losses as pure, jit-able functions of arrays (SPEC sections 4-5)."""

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
    regularization,
    soft_symmetry,
    swap_within_groups,
)

__all__ = [
    "EYELID_LOWER", "EYELID_UPPER", "deca_landmark_weights", "displacement_l1", "eye_closure",
    "face_mask_photometric", "group_swap_permutation", "id_mrf", "id_mrf_layer",
    "identity_cosine", "landmark_l1", "pixel_loss", "regularization", "safe_norm",
    "soft_symmetry", "structural_consistency", "swap_within_groups",
]
