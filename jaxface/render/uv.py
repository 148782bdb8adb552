"""UV-space maps of a mesh (DECA's ``world2uv``) and the detail normals of a displaced mesh.

UV images follow jaxface's convention: (S, S) with row 0 at v = 1 (the top) and texel (i, j)
centred at uv ((j + 0.5) / S, 1 - (i + 0.5) / S), the way DECA samples them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.geometry import vertex_normals
from jaxface.render.rasterize import interpolate, rasterize


def clip_from_uv(uv_Nx2: jax.Array) -> jax.Array:
    """Clip-space positions (N, 4) that draw UV coordinates into a UV image (row 0 at v = 1)."""
    u, v = uv_Nx2[:, 0], uv_Nx2[:, 1]
    return jnp.stack([2.0 * u - 1.0, 1.0 - 2.0 * v, jnp.zeros_like(u), jnp.ones_like(u)], -1)


@functools.partial(jax.jit, static_argnames=("size", "backend"))
def uv_rasterize(uv_coords_Vtx2: jax.Array, uv_faces_Tx3: jax.Array, size: int,
                 backend: str = "auto") -> jax.Array:
    """Rasterizes the UV layout once -> rast (1, S, S, 4): which triangle covers each texel and
    where. It depends on the layout only, so it is computed once per mesh and reused."""
    rast, _ = rasterize(clip_from_uv(uv_coords_Vtx2)[None], uv_faces_Tx3, (size, size),
                        backend=backend)
    return rast


def world2uv(attr_BxVxC: jax.Array, uv_rast_1xSxSx4: jax.Array,
             faces_Tx3: jax.Array, backend: str = "auto") -> jax.Array:
    """Per-vertex attributes (e.g. positions, normals) as UV images (B, S, S, C); texels no
    triangle covers are 0. Each UV triangle interpolates its own mesh triangle's corners
    (``faces`` pairs with the ``uv_faces`` the layout was rasterized with), so a UV vertex
    shared by several mesh vertices (a seam zipped in UV) still gets each triangle's own
    values, as DECA's ``world2uv`` does. ``backend``: the interpolation's (the run's
    ``render.backend``)."""
    b, c = attr_BxVxC.shape[0], attr_BxVxC.shape[-1]
    n_tri = faces_Tx3.shape[0]
    corners = attr_BxVxC[:, faces_Tx3].reshape(b, 3 * n_tri, c)      # every corner its own
    corner_ids = jnp.arange(3 * n_tri, dtype=jnp.int32).reshape(n_tri, 3)
    rast = jnp.broadcast_to(uv_rast_1xSxSx4, (b,) + uv_rast_1xSxSx4.shape[1:])
    out, _ = interpolate(corners, rast, corner_ids, backend=backend)
    return out


@functools.lru_cache(maxsize=8)
def grid_faces(size: int, flip: bool) -> np.ndarray:
    """Triangles (2 (S-1)^2, 3) of the dense mesh whose vertices are the texels of an S x S
    UV image (row-major), counter-clockwise in (u, v) unless ``flip``."""
    idx = np.arange(size * size).reshape(size, size)
    top_left, top_right = idx[:-1, :-1], idx[:-1, 1:]
    bottom_left, bottom_right = idx[1:, :-1], idx[1:, 1:]
    # Rows run down in v: (bottom_left, bottom_right, top_right) is counter-clockwise in (u, v).
    faces = np.concatenate([
        np.stack([bottom_left, bottom_right, top_right], -1).reshape(-1, 3),
        np.stack([bottom_left, top_right, top_left], -1).reshape(-1, 3),
    ])
    return np.ascontiguousarray(faces[:, ::-1] if flip else faces).astype(np.int32)


def displacement_normals(uv_positions_BxSxSx3: jax.Array, uv_normals_BxSxSx3: jax.Array,
                         displacement_BxSxSx1: jax.Array, uv_mask_SxSx1: jax.Array,
                         uv_flipped: bool, fixed_displacement_SxSx1: jax.Array | None = None
                         ) -> jax.Array:
    """Normals (B, S, S, 3) of the coarse surface displaced along its normals by a UV
    displacement map (DECA's ``displacement2normal``): the displaced texels form a dense grid
    mesh whose vertex normals are the detail normals; outside the mask the coarse normals stay.

    Args:
      uv_positions_BxSxSx3, uv_normals_BxSxSx3: :func:`world2uv` of the coarse vertices and
        their unit normals.
      displacement_BxSxSx1: the displacement along the normal, in the positions' units.
      uv_mask_SxSx1: 1 where detail applies (DECA's face-and-eye UV mask), 0 elsewhere.
      uv_flipped: the UV layout mirrors the surface (clockwise in uv seen from outside); see
        :func:`uv_orientation_flipped`.
      fixed_displacement_SxSx1: DECA's constant displacement, added everywhere (unmasked).
    """
    b, size = uv_positions_BxSxSx3.shape[:2]
    disp = displacement_BxSxSx1 * uv_mask_SxSx1
    if fixed_displacement_SxSx1 is not None:
        disp = disp + fixed_displacement_SxSx1
    dense = uv_positions_BxSxSx3 + disp * uv_normals_BxSxSx3
    faces = jnp.asarray(grid_faces(size, uv_flipped))
    normals = vertex_normals(dense.reshape(b, size * size, 3), faces).reshape(b, size, size, 3)
    return normals * uv_mask_SxSx1 + uv_normals_BxSxSx3 * (1.0 - uv_mask_SxSx1)


def uv_orientation_flipped(uv_coords_Vtx2: np.ndarray, uv_faces_Tx3: np.ndarray) -> bool:
    """Whether the UV layout mirrors the surface: the mesh's triangles, counter-clockwise seen
    from outside (FLAME's convention), are mostly clockwise in (u, v) (by area)."""
    uv = np.asarray(uv_coords_Vtx2, np.float64)[np.asarray(uv_faces_Tx3)]
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    return bool(np.sum(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) < 0)


@functools.partial(jax.jit, static_argnames=("image_size", "backend"))
def face_region_uv_masks(vertices_Vx3: jax.Array, landmarks_68x3: jax.Array,
                         faces_Tx3: jax.Array, eyeball_V: jax.Array, uv_rast_1xSxSx4: jax.Array,
                         image_size: int = 256, backend: str = "auto"
                         ) -> tuple[jax.Array, jax.Array]:
    """UV masks (S, S, 1) of the face region, derived from the mesh so any FLAME-format head
    has them -> (face and eyes, face without the eyeballs): the roles of DECA's hand-painted
    ``uv_face_eye_mask.png`` (the loss render's region, where the detail displacement
    applies) and ``uv_face_mask.png`` (the soft-symmetry mask). A texel is in the region when
    its surface faces the camera inside the landmark hull (jaw line + raised brows) of a
    frontal view of the neutral head.

    Args:
      vertices_Vx3, landmarks_68x3: the neutral head (zero pose/expression), looking along +z.
      eyeball_V: (V,) bool, the eyeball vertices (skinned to the eye joints).
    """
    from jaxface.geometry.masks import landmark_hull, polygon_mask

    xy = jnp.concatenate([vertices_Vx3[:, :2], landmarks_68x3[:, :2]])
    lo, hi = jnp.min(xy, 0), jnp.max(xy, 0)
    scale = 0.9 * image_size / jnp.max(hi - lo)
    # Frontal view in pixels (column, row), row 0 at the top (y up in the head's frame).
    def to_pixels(p):
        return jnp.stack([(p[:, 0] - (lo[0] + hi[0]) / 2) * scale + image_size / 2,
                          ((lo[1] + hi[1]) / 2 - p[:, 1]) * scale + image_size / 2], -1)

    hull = polygon_mask(landmark_hull(to_pixels(landmarks_68x3)[None]), image_size,
                        image_size)[0, ..., 0]
    pix = jnp.clip(jnp.floor(to_pixels(vertices_Vx3)).astype(jnp.int32), 0, image_size - 1)
    inside = hull[pix[:, 1], pix[:, 0]] > 0.5
    facing = vertex_normals(vertices_Vx3[None], faces_Tx3)[0, :, 2] > 0.0
    region = inside & facing
    masks = []
    for indicator in (region, region & ~eyeball_V):
        uv = world2uv(indicator.astype(jnp.float32)[None, :, None], uv_rast_1xSxSx4, faces_Tx3,
                      backend)
        masks.append((uv[0] > 0.5).astype(jnp.float32))
    return masks[0], masks[1]


def vertices_in_uv_mask(uv_mask_SxSx1: jax.Array, faces_Tx3: jax.Array, uv_coords_Vtx2: jax.Array,
                        uv_faces_Tx3: jax.Array, n_vertices: int) -> jax.Array:
    """(V,) bool: the vertices whose texture coordinate (any of them, where a vertex has
    several across UV seams) falls on a texel of the mask that is on (> 0.5); e.g. the face
    region's vertices, where 3-D errors are measured on the observed surface."""
    size_h, size_w = uv_mask_SxSx1.shape[:2]
    uv = uv_coords_Vtx2[uv_faces_Tx3.reshape(-1)]
    col = jnp.clip(jnp.floor(uv[:, 0] * size_w).astype(jnp.int32), 0, size_w - 1)
    row = jnp.clip(jnp.floor((1.0 - uv[:, 1]) * size_h).astype(jnp.int32), 0, size_h - 1)
    on = (uv_mask_SxSx1[row, col, 0] > 0.5).astype(jnp.int32)
    return jax.ops.segment_max(on, faces_Tx3.reshape(-1), num_segments=n_vertices) > 0
