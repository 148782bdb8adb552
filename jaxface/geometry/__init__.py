"""Camera projection and surface normals, as small pure functions."""

from jaxface.geometry.camera import (
    cam_from_deca,
    ndc_from_pixels,
    pixels_from_ndc,
    weak_perspective,
)
from jaxface.geometry.normals import face_normals, safe_normalize, vertex_normals

__all__ = ["cam_from_deca", "face_normals", "ndc_from_pixels", "pixels_from_ndc", "safe_normalize",
           "vertex_normals", "weak_perspective"]
