import jax.numpy as jnp
import numpy as np

from jaxface.geometry import (
    cam_from_deca,
    ndc_from_pixels,
    pixels_from_ndc,
    weak_perspective,
)


def test_weak_perspective_formula(rng, x64):
    pts, cam = rng.normal(size=(3, 10, 3)), rng.normal(size=(3, 3))
    got = np.asarray(weak_perspective(jnp.asarray(pts), jnp.asarray(cam)))
    for b in range(3):
        s, tx, ty = cam[b]
        np.testing.assert_allclose(got[b, :, 0], s * pts[b, :, 0] + tx, atol=1e-14)
        np.testing.assert_allclose(got[b, :, 1], s * pts[b, :, 1] + ty, atol=1e-14)
        np.testing.assert_allclose(got[b, :, 2], s * pts[b, :, 2], atol=1e-14)


def test_deca_camera_conversion(rng, x64):
    pts, cam_deca = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 3))
    deca = cam_deca[:, None, :1] * (pts[..., :2] + cam_deca[:, None, 1:])  # DECA's batch_orth_proj
    got = weak_perspective(jnp.asarray(pts), cam_from_deca(jnp.asarray(cam_deca)))
    np.testing.assert_allclose(np.asarray(got)[..., :2], deca, atol=1e-13)


def test_pixel_centres_and_round_trip(rng, x64):
    h, w = 4, 6
    # nvdiffrast's pixel (i, j) centre is ndc ((j + .5) / W * 2 - 1, (i + .5) / H * 2 - 1) with
    # row 0 at y = -1; in the image (row 0 on top) that row is the bottom one, i.e. H - 1 - i.
    i, j = 1, 4
    ndc = jnp.asarray([[[(j + 0.5) / w * 2 - 1, (i + 0.5) / h * 2 - 1]]])
    np.testing.assert_allclose(np.asarray(pixels_from_ndc(ndc, h, w))[0, 0],
                               [j + 0.5, (h - 1 - i) + 0.5], atol=1e-12)
    pix = jnp.asarray(rng.uniform(0, 6, size=(2, 7, 2)))
    np.testing.assert_allclose(np.asarray(pixels_from_ndc(ndc_from_pixels(pix, h, w), h, w)),
                               np.asarray(pix), atol=1e-12)
