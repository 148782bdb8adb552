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


def test_photo_camera_composes_the_crop_projection_with_the_crop(rng):
    """P and (K, R, t) equal weak perspective -> crop pixels -> photo pixels (formula)."""
    from jaxface.geometry.camera import photo_camera

    cam = np.array([rng.uniform(2, 12), rng.normal(0, 0.3), rng.normal(0, 0.3)])
    crop = np.array([rng.uniform(100, 900), rng.uniform(100, 900), rng.uniform(50, 600)])
    size = 224
    points = rng.normal(0, 0.1, size=(7, 3))
    ndc = cam[0] * points[:, :2] + cam[1:]
    crop_px = np.stack([(ndc[:, 0] + 1) * size / 2, (1 - ndc[:, 1]) * size / 2], -1)
    want = crop_px * crop[2] / size + crop[:2] - crop[2] / 2
    c = photo_camera(cam, crop)
    got = (np.concatenate([points, np.ones((7, 1))], 1) @ c["P"].T)
    np.testing.assert_allclose(got[:, :2], want, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(got[:, 2], 1.0)
    cam_points = points @ c["R"].T + c["t"]
    np.testing.assert_allclose(cam_points[:, :2] @ c["K"][:2, :2].T + c["K"][:2, 2], want,
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(cam_points[:, 2], -points[:, 2])   # depth: farther is larger
