"""Rendering: nvdiffrast's primitives in pure JAX (rasterize, interpolate, texture, antialias) and
spherical-harmonics lighting.

The rasterizer follows nvdiffrast's contracts (clip-space input, ``rast`` = (u, v, z/w,
triangle_id + 1), its pixel layout and gradient rules), so a backend built on nvdiffrast's
CUDA kernels can replace the pure-JAX one behind the same ``backend`` argument.
"""

from jaxface.render.antialias import antialias, antialias_topology
from jaxface.render.backend import BACKENDS, BackendUnavailableError, resolve_backend
from jaxface.render.rasterize import interpolate, rasterize
from jaxface.render.sh import SH_CONSTANTS, sh_basis, sh_shading
from jaxface.render.texture import texture

__all__ = ["BACKENDS", "SH_CONSTANTS", "BackendUnavailableError", "antialias", "antialias_topology",
           "interpolate", "rasterize", "resolve_backend", "sh_basis", "sh_shading", "texture"]
