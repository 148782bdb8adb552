"""The weak-perspective (scaled orthographic) camera and image coordinates.

Frames: *world* is FLAME's (metres, y up, the face looking along +z). *ndc* is the camera's
normalised image plane, x right and y up, the image spanning [-1, 1]; depth is kept as z
(larger = closer to the camera). *pixels* are continuous image coordinates (column, row) with
row 0 at the top and pixel (i, j)'s centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def weak_perspective(points_BxNx3: jax.Array, cam_Bx3: jax.Array) -> jax.Array:
    """ndc_from_world for camera c = (s, tx, ty): v = s * P(X) + t, depth s * z.

    This is the paper's (and SPEC section 2's) parameterisation. DECA's code applies the
    translation before the scale, s * (P(X) + t'); the two agree for t = s * t'
    (:func:`cam_from_deca`).
    """
    s = cam_Bx3[:, None, 0:1]
    t = cam_Bx3[:, None, 1:3]
    xy = s * points_BxNx3[..., :2] + t
    return jnp.concatenate([xy, s * points_BxNx3[..., 2:3]], axis=-1)


def cam_from_deca(cam_deca_Bx3: jax.Array) -> jax.Array:
    """Converts DECA's (s, t') camera to this module's (s, t = s t')."""
    s = cam_deca_Bx3[:, 0:1]
    return jnp.concatenate([s, s * cam_deca_Bx3[:, 1:3]], axis=-1)


def pixels_from_ndc(xy_BxNx2: jax.Array, height: int, width: int) -> jax.Array:
    """Continuous pixel coordinates (column, row) of ndc points (y up -> row down)."""
    col = (xy_BxNx2[..., 0] + 1.0) * (0.5 * width)
    row = (1.0 - xy_BxNx2[..., 1]) * (0.5 * height)
    return jnp.stack([col, row], axis=-1)


def ndc_from_pixels(pix_BxNx2: jax.Array, height: int, width: int) -> jax.Array:
    """Inverse of :func:`pixels_from_ndc`."""
    x = pix_BxNx2[..., 0] / (0.5 * width) - 1.0
    y = 1.0 - pix_BxNx2[..., 1] / (0.5 * height)
    return jnp.stack([x, y], axis=-1)


def photo_camera(cam_3: np.ndarray, crop_3: np.ndarray) -> dict[str, np.ndarray]:
    """The weak-perspective camera (s, tx, ty) of a square crop (photo pixels: centre cx, cy
    and side) as cameras of the original photo, float64:

    - ``P`` (3, 4): an affine (orthographic) camera, photo pixels (column, row, 1) =
      ``P @ [X, Y, Z, 1]`` for world points X (FLAME's frame, metres);
    - OpenCV-style ``K`` (3, 3), ``R`` (3, 3), ``t`` (3,): camera axes x right, y down, z into
      the scene (R = diag(1, -1, -1): FLAME's face looks along +z, at the camera), and the
      orthographic projection ``pixel = K[:2, :2] @ (R X + t)[:2] + K[:2, 2]``, i.e.
      ``P = K @ [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]] @ [[R, t], [0, 0, 0, 1]]``;
      (R X + t)[2] is the depth (larger = farther), up to an offset.

    From ndc = s (X, Y) + t (:func:`weak_perspective`), crop pixels = (ndc_x + 1, 1 - ndc_y)
    x size / 2 (:func:`pixels_from_ndc`) and photo = crop x side / size + the crop's corner:
    the focal length is f = s side / 2 pixels per metre."""
    s, tx, ty = (float(v) for v in np.asarray(cam_3, np.float64))
    cx, cy, side = (float(v) for v in np.asarray(crop_3, np.float64))
    f = s * side / 2
    K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    R = np.diag([1.0, -1.0, -1.0])
    t = np.array([tx / s, -ty / s, 0.0])
    ortho = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
    P = K @ ortho @ np.vstack([np.hstack([R, t[:, None]]), [0, 0, 0, 1.0]])
    return {"P": P, "K": K, "R": R, "t": t}
