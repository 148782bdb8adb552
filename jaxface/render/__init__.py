"""Rendering: nvdiffrast's primitives in pure JAX (rasterize, interpolate, texture, antialias),
spherical-harmonics lighting, and DECA's face renderer on top (shaded and shape-only renders,
UV-space maps, detail normals from a UV displacement map).

The rasterizer follows nvdiffrast's contracts (clip-space input, ``rast`` = (u, v, z/w,
triangle_id + 1), its pixel layout and gradient rules), so nvdiffrast's own CUDA kernels
(:mod:`jaxface.render.nvdr_ffi`, through XLA FFI) run behind the same ``backend`` argument.
"""

from jaxface.render.antialias import antialias, antialias_topology
from jaxface.render.backend import BACKENDS, BackendUnavailableError, resolve_backend
from jaxface.render.face import (
    FaceTopology,
    RenderOutput,
    clip_from_ndc,
    face_topology,
    project_landmarks,
    render,
    render_shape,
)
from jaxface.render.rasterize import interpolate, rasterize
from jaxface.render.sh import SH_CONSTANTS, sh_basis, sh_shading
from jaxface.render.texture import texture
from jaxface.render.uv import displacement_normals, world2uv

__all__ = ["BACKENDS", "SH_CONSTANTS", "BackendUnavailableError", "FaceTopology", "RenderOutput",
           "antialias", "antialias_topology", "clip_from_ndc", "displacement_normals",
           "face_topology", "interpolate", "project_landmarks", "rasterize", "render",
           "render_shape", "resolve_backend", "sh_basis", "sh_shading", "texture", "world2uv"]
