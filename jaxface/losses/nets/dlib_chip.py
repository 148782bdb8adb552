"""dlib's aligned face chip, in JAX: what its face-recognition network was trained on.

dlib's ``compute_face_descriptor`` sees a 150 x 150 chip cut from the photo by a similarity
transform (rotation, scale, shift) fitted to the face's landmarks (``get_face_chip_details``:
a least-squares fit of the 68-point shape's eye, nose and upper-mouth points to dlib's
template, 25 % padding). That fit is linear in the landmark coordinates, so it is one matrix:
:func:`chip_fit_matrix` measures it from dlib itself (perturbed landmark sets in, the fitted
chip rectangle and angle out, solved for the linear map: no template copied), and
:func:`extract_chips` cuts the chips of a batch as dlib's ``extract_image_chip`` samples
them, bilinearly and differentiably in the image, so a render and the photo it is compared
with go through the same alignment.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

CHIP_SIZE, CHIP_PADDING = 150, 0.25   # compute_face_descriptor's chip


def _chip_fit_from_dlib(dlib, points_68x2: np.ndarray, size: int, padding: float
                        ) -> np.ndarray:
    """dlib's fitted chip of integer landmarks (dlib's pixel convention) -> (s cos, s sin,
    centre x, centre y): the chip's scale (image pixels per chip pixel of the fit), angle and
    centre. dlib's chip rectangle spans scale x size - 1 pixels."""
    det = dlib.full_object_detection(dlib.rectangle(0, 0, 1, 1),
                                     [dlib.point(int(x), int(y)) for x, y in points_68x2])
    chip = dlib.get_face_chip_details(det, size, padding)
    r = chip.rect
    scale = (r.right() - r.left() + 1.0) / chip.cols
    return np.array([scale * np.cos(chip.angle), scale * np.sin(chip.angle),
                     (r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])


@functools.lru_cache(maxsize=4)
def chip_fit_matrix(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The (4, 136) matrix M with (s cos, s sin, centre x, centre y) = M @ landmarks.ravel()
    of dlib's chip fit (landmarks in dlib's pixel convention, pixel centres at integers),
    measured from dlib's ``get_face_chip_details``. Needs dlib (the ``face`` extra)."""
    try:
        import dlib
    except ImportError as e:
        from jaxface.assets import AssetError, install_hint

        raise AssetError("dlib's face-chip alignment needs dlib: " + install_hint("face")
                         ) from e
    from jaxface import flame

    # A face-like base shape (the embedded head's neutral landmarks, frontal, ~200 px wide):
    # dlib's fit has no mirror solution near a face.
    model = flame.synthetic_flame()
    lmk = np.asarray(flame.forward(model, jnp.zeros((1, model.n_shape)),
                                   jnp.zeros((1, model.n_expression)),
                                   jnp.zeros((1, 15))).landmarks3d[0, :, :2], np.float64)
    base = np.round((lmk - lmk.mean(0)) / np.ptp(lmk[:, 0]) * [200.0, -200.0] + 512.0)
    base = base.astype(np.int64)
    at_base = _chip_fit_from_dlib(dlib, base, size, padding)
    # The points dlib's fit uses (not the jaw, brows or lower lip): moving one changes it.
    used = []
    for i in range(68):
        moved = base.copy()
        moved[i] += 7
        if np.abs(_chip_fit_from_dlib(dlib, moved, size, padding) - at_base).max() > 1e-9:
            used.append(i)
    rng = np.random.default_rng(0)
    probes = [base + rng.integers(-20, 21, size=base.shape) for _ in range(3 * len(used))]
    x = np.stack([p[used].reshape(-1) for p in probes]).astype(np.float64)
    y = np.stack([_chip_fit_from_dlib(dlib, p, size, padding) for p in probes])
    fit, *_ = np.linalg.lstsq(x, y, rcond=None)
    matrix = np.zeros((4, 68, 2))
    matrix[:, used] = fit.T.reshape(4, len(used), 2)
    return matrix.reshape(4, 136).astype(np.float32)


def chip_similarity(landmarks_Bx68x2: jax.Array, fit_matrix_4x136: jax.Array,
                    size: int = CHIP_SIZE) -> jax.Array:
    """(B, 4) chip -> image maps (a, b, tx, ty), image point = [[a, -b], [b, a]] chip point +
    t, both in jaxface's pixel convention (pixel centres at +0.5), of landmarks (B, 68, 2) in
    that convention: where dlib's ``extract_image_chip`` samples (its rectangle's corner
    pixels on the chip's corner pixels, so the scale is (size s - 1) / (size - 1))."""
    dlib_points = (landmarks_Bx68x2 - 0.5).reshape(-1, 136)
    fit = dlib_points @ fit_matrix_4x136.T
    p, q, centre = fit[:, 0], fit[:, 1], fit[:, 2:]
    s = jnp.sqrt(p * p + q * q)
    a = (size * p - p / s) / (size - 1)
    b = (size * q - q / s) / (size - 1)
    half = (size - 1) / 2.0                 # chip centre, dlib's convention
    tx = centre[:, 0] - (a - b) * half
    ty = centre[:, 1] - (b + a) * half
    # jaxface's convention on both sides: t' = t + 0.5 - R (0.5, 0.5).
    return jnp.stack([a, b, tx + 0.5 - 0.5 * (a - b), ty + 0.5 - 0.5 * (b + a)], -1)


def extract_chips(rgb_BxHxWxC: jax.Array, landmarks_Bx68x2: jax.Array,
                  fit_matrix_4x136: jax.Array, size: int = CHIP_SIZE) -> jax.Array:
    """dlib's aligned chips (B, size, size, C) of images and their 68 landmarks (pixels,
    centres at +0.5): bilinear, differentiable in the image; as dlib's bilinear interpolation,
    a chip pixel whose four source pixels are not all inside the image is 0. dlib equals this
    while the chip's square covers at most twice its side in source pixels (faces up to ~200
    px wide for the 150-px chip: the identity loss's renders); beyond that dlib first shrinks
    the image by its anti-aliasing pyramid, which this does not."""
    sim = chip_similarity(landmarks_Bx68x2, fit_matrix_4x136, size)
    centres = jnp.arange(size, dtype=rgb_BxHxWxC.dtype) + 0.5
    cx, cy = centres[None, :], centres[:, None]                        # chip column, row

    def one(image, s):
        a, b, tx, ty = s[0], s[1], s[2], s[3]
        x = a * cx - b * cy + tx - 0.5          # image index coordinates (centres at ints)
        y = b * cx + a * cy + ty - 0.5
        h, w = image.shape[:2]
        inside = (x >= 0) & (x < w - 1) & (y >= 0) & (y < h - 1)
        return jnp.stack([jnp.where(inside, jax.scipy.ndimage.map_coordinates(
            image[..., c], [y, x], order=1, mode="nearest"), 0.0)
            for c in range(image.shape[-1])], -1)

    return jax.vmap(one)(rgb_BxHxWxC, sim)
