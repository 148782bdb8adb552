"""The face renderer (DECA's, on the nvdiffrast-contract primitives).

Images are (B, H, W, C) with row 0 at the top. Vertices come in FLAME's world frame and go
through the weak-perspective camera to ndc (x right, y up, depth larger = closer); ndc becomes
clip space by flipping y (nvdiffrast's row 0 is at y = -1) and mapping depth d to z = -d /
``Z_RANGE``, so nearer surfaces win and anything within |d| < ``Z_RANGE`` is drawn.

Shading is computed per pixel: vertex normals are interpolated, renormalised and lit with the
SH coefficients (in world orientation, which the weak-perspective camera shares); the albedo is
looked up at each pixel's interpolated UV. (DECA does the same, without renormalising.) With a
UV map of detail normals, those are looked up at the pixel's UV instead.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.geometry import pixels_from_ndc, safe_normalize, vertex_normals, weak_perspective
from jaxface.render.antialias import antialias, antialias_topology
from jaxface.render.rasterize import interpolate, rasterize
from jaxface.render.sh import sh_shading
from jaxface.render.texture import texture
from jaxface.render.uv import uv_orientation_flipped, uv_rasterize

Z_RANGE = 10.0  # ndc depths beyond +-Z_RANGE fall outside the clip volume (DECA offsets by 10)

# render_shape's look: DECA's gray and its five directional lights (camera frame, +z to the
# viewer), each of intensity 1.7, averaged.
SHAPE_GRAY = 180.0 / 255.0
SHAPE_LIGHT_DIRECTIONS = np.array([[-1, 1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, 1], [0, 0, 1]],
                                  np.float32) / np.sqrt([3, 3, 3, 3, 1])[:, None]
SHAPE_LIGHT_INTENSITY = 1.7


@dataclasses.dataclass(frozen=True)
class FaceTopology:
    """What rendering needs of a mesh besides its vertices; built once by :func:`face_topology`.

    Attributes:
      faces: (T, 3) int32 triangles.
      uv_coords: (Vt, 2) texture coordinates (v up).
      uv_faces: (T, 3) int32 indices into ``uv_coords``.
      opposite: (T, 3) int32 the shared-edge table for :func:`antialias`.
      uv_rast: (1, S, S, 4) the UV layout rasterized into an S x S UV image.
      uv_flipped: the UV layout mirrors the surface (static).
    """

    faces: jax.Array
    uv_coords: jax.Array
    uv_faces: jax.Array
    opposite: jax.Array
    uv_rast: jax.Array
    uv_flipped: bool = False

    @property
    def uv_size(self) -> int:
        return self.uv_rast.shape[1]


jax.tree_util.register_dataclass(
    FaceTopology,
    data_fields=["faces", "uv_coords", "uv_faces", "opposite", "uv_rast"],
    meta_fields=["uv_flipped"],
)


def face_topology(faces_Tx3, uv_coords_Vtx2, uv_faces_Tx3, uv_size: int = 256,
                  backend: str = "auto") -> FaceTopology:
    """Precomputes a mesh's rendering topology (shared-edge table, UV rasterization), e.g.
    ``face_topology(model.faces, model.uvs, model.uv_faces)``."""
    faces_np, uv_faces_np = np.asarray(faces_Tx3), np.asarray(uv_faces_Tx3)
    uv_np = np.asarray(uv_coords_Vtx2, np.float32)
    faces, uv_faces = jnp.asarray(faces_np, jnp.int32), jnp.asarray(uv_faces_np, jnp.int32)
    uv_coords = jnp.asarray(uv_np)
    return FaceTopology(
        faces=faces,
        uv_coords=uv_coords,
        uv_faces=uv_faces,
        opposite=antialias_topology(faces),
        uv_rast=uv_rasterize(uv_coords, uv_faces, uv_size, backend),
        uv_flipped=uv_orientation_flipped(uv_np, uv_faces_np),
    )


def clip_from_ndc(ndc_BxVx3: jax.Array) -> jax.Array:
    """Clip-space positions (B, V, 4) of ndc points, for an image with row 0 at the top."""
    x, y, d = ndc_BxVx3[..., 0], ndc_BxVx3[..., 1], ndc_BxVx3[..., 2]
    return jnp.stack([x, -y, -d / Z_RANGE, jnp.ones_like(x)], -1)


class RenderOutput(NamedTuple):
    """What :func:`render` returns; all (B, H, W, C), zeros outside the face but ``image``."""

    image: jax.Array     # (.., 3) albedo x shading over the background, antialiased
    alpha: jax.Array     # (.., 1) coverage, antialiased (soft at silhouettes)
    albedo: jax.Array    # (.., 3) albedo looked up at each pixel's UV
    shading: jax.Array   # (.., 3) SH shading
    normals: jax.Array   # (.., 3) unit world-frame normals used for shading
    uv: jax.Array        # (.., 2) the UV coordinate seen at each pixel
    rast: jax.Array      # (.., 4) the rasterizer's output (u, v, z/w, triangle_id + 1)


def _lookup_uv_image(uv_image_BxSxSxC: jax.Array, uv_BxHxWx2: jax.Array,
                     backend: str) -> jax.Array:
    """Bilinear lookup in a jaxface UV image (row 0 at v = 1) at UV coordinates."""
    return texture(uv_image_BxSxSxC[:, ::-1], uv_BxHxWx2, boundary_mode="clamp", backend=backend)


def render(vertices_BxVx3: jax.Array, cam_Bx3: jax.Array, albedo_uv_BxSxSx3: jax.Array,
           sh_Bx9x3: jax.Array, topology: FaceTopology, image_size: tuple[int, int],
           detail_normals_uv: jax.Array | None = None, background: jax.Array | None = None,
           use_antialias: bool = True, backend: str = "auto",
           region_uv_mask: jax.Array | None = None) -> RenderOutput:
    """Renders shaded, textured faces.

    Args:
      vertices_BxVx3: posed FLAME vertices (world frame).
      cam_Bx3: weak-perspective cameras (s, tx, ty).
      albedo_uv_BxSxSx3: UV albedo maps (row 0 at v = 1), e.g. from ``flame.albedo_map``.
      sh_Bx9x3: SH lighting coefficients per colour channel.
      topology: :func:`face_topology` of the mesh.
      image_size: (H, W), static.
      detail_normals_uv: optional (B, S', S', 3) UV normal maps (e.g.
        :func:`~jaxface.render.uv.displacement_normals`) to shade with instead of the mesh's.
      background: optional (B, H, W, 3) image behind the face (default black).
      use_antialias: antialias silhouettes (and get gradients to them).
      backend: the rasterizer backend ("auto", "jax", "nvdiffrast").
      region_uv_mask: optional (S, S, 1) UV mask (row 0 at v = 1, e.g. DECA's face-and-eye
        mask): the face is drawn only where it is on, the background elsewhere. DECA's
        render for the losses: the region, looked up at each pixel's UV, and the coverage
        are constants (no gradient), so only the shading and albedo inside the region pull
        on the parameters, never the outline of scalp, ears or neck. ``alpha`` is then the
        region's coverage.
    """
    pos = clip_from_ndc(weak_perspective(vertices_BxVx3, cam_Bx3))
    rast, _ = rasterize(pos, topology.faces, image_size, backend=backend)
    mask = (rast[..., 3:] > 0).astype(vertices_BxVx3.dtype)
    normals_v = vertex_normals(vertices_BxVx3, topology.faces)
    uv, _ = interpolate(topology.uv_coords, rast, topology.uv_faces, backend=backend)
    if detail_normals_uv is None:
        normals, _ = interpolate(normals_v, rast, topology.faces, backend=backend)
    else:
        normals = _lookup_uv_image(detail_normals_uv, uv, backend)
    normals = safe_normalize(normals) * mask
    albedo = _lookup_uv_image(albedo_uv_BxSxSx3, uv, backend) * mask
    shading = sh_shading(normals, sh_Bx9x3) * mask
    if background is None:
        background = jnp.zeros_like(albedo)
    alpha = mask
    if region_uv_mask is not None:
        region = _lookup_uv_image(region_uv_mask[None].astype(mask.dtype), uv, backend)
        alpha = jax.lax.stop_gradient(mask * region)
    # albedo and shading are 0 off the mesh, so the region only weighs covered pixels.
    image = albedo * shading * alpha + background * (1.0 - alpha)
    if use_antialias:
        both = antialias(jnp.concatenate([image, alpha], -1), rast, pos, topology.faces,
                         topology.opposite, backend=backend)
        image, alpha = both[..., :3], both[..., 3:]
    return RenderOutput(image=image, alpha=alpha, albedo=albedo, shading=shading,
                        normals=normals, uv=uv, rast=rast)


def render_shape(vertices_BxVx3: jax.Array, cam_Bx3: jax.Array, topology: FaceTopology,
                 image_size: tuple[int, int], detail_normals_uv: jax.Array | None = None,
                 background: float = 0.0, backend: str = "auto") -> jax.Array:
    """A gray, directionally lit "shape only" picture (B, H, W, 3) for visualisation, DECA's
    look; with ``detail_normals_uv``, the detail surface."""
    pos = clip_from_ndc(weak_perspective(vertices_BxVx3, cam_Bx3))
    rast, _ = rasterize(pos, topology.faces, image_size, backend=backend)
    mask = (rast[..., 3:] > 0).astype(vertices_BxVx3.dtype)
    if detail_normals_uv is None:
        normals, _ = interpolate(vertex_normals(vertices_BxVx3, topology.faces), rast,
                                 topology.faces, backend=backend)
    else:
        uv, _ = interpolate(topology.uv_coords, rast, topology.uv_faces, backend=backend)
        normals = _lookup_uv_image(detail_normals_uv, uv, backend)
    normals = safe_normalize(normals)
    lights = jnp.asarray(SHAPE_LIGHT_DIRECTIONS, normals.dtype)
    lambert = jnp.clip(jnp.einsum("bhwc,lc->bhwl", normals, lights), 0.0, None)
    shade = SHAPE_LIGHT_INTENSITY * jnp.mean(lambert, -1, keepdims=True)
    image = jnp.clip(SHAPE_GRAY * shade, 0.0, 1.0) * mask + background * (1.0 - mask)
    image = jnp.broadcast_to(image, image.shape[:-1] + (3,))
    return antialias(image, rast, pos, topology.faces, topology.opposite, backend=backend)


def project_landmarks(landmarks_BxLx3: jax.Array, cam_Bx3: jax.Array,
                      image_size: tuple[int, int]) -> jax.Array:
    """2-D landmarks in pixels (B, L, 2) as (column, row), row 0 at the top, pixel centres at
    +0.5: where the renderer draws the corresponding surface points."""
    ndc = weak_perspective(landmarks_BxLx3, cam_Bx3)
    return pixels_from_ndc(ndc[..., :2], *image_size)
