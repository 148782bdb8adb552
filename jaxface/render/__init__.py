"""Rendering: spherical-harmonics lighting (and, with the rasterizer issue, rasterization)."""

from jaxface.render.sh import SH_CONSTANTS, sh_basis, sh_shading

__all__ = ["SH_CONSTANTS", "sh_basis", "sh_shading"]
