"""dlib's aligned face chip in JAX against dlib's own ``get_face_chip`` on real photos."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

dlib = pytest.importorskip("dlib", reason="needs the `face` extra (dlib-bin)")
skimage_data = pytest.importorskip("skimage.data", reason="needs the `face` extra")

from jaxface.losses.nets.dlib_chip import (  # noqa: E402
    chip_fit_matrix,
    chip_similarity,
    extract_chips,
)


@pytest.fixture(scope="module")
def photos():
    from matplotlib import cbook
    from PIL import Image

    from jaxface.data.landmarks import landmark_backend

    detector = landmark_backend("dlib")
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    images = {"astronaut": skimage_data.astronaut(), "hopper": hopper}
    return {name: (image, detector(image).landmarks) for name, image in images.items()}


def _dlib_chip(image, landmarks_dlib):
    det = dlib.full_object_detection(
        dlib.rectangle(0, 0, 1, 1), [dlib.point(int(x), int(y)) for x, y in landmarks_dlib])
    return dlib.get_face_chip(image, det, size=150, padding=0.25)


def _chip(image, points_dlib, dtype):
    """Our chip of dlib-convention integer landmarks, computed in ``dtype``."""
    return np.asarray(extract_chips(jnp.asarray(image[None], dtype),
                                    jnp.asarray(points_dlib[None] + 0.5, dtype),
                                    jnp.asarray(chip_fit_matrix(), dtype)))[0]


def _assert_dlib_truncates(got, dlib_chip):
    """dlib truncates its interpolated value to uint8: ours minus dlib's lies in [0, 1), up to
    dlib's own rounding (below 5e-4 levels in float64, over 100 random similarities of each
    photo)."""
    diff = got - dlib_chip
    assert -0.01 <= diff.min() and diff.max() <= 1.01, (diff.min(), diff.max())


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_chips_are_dlibs_chips(photos, rng, x64, name):
    """The same pixels as dlib's chip, also for the face moved, turned and scaled by a random
    similarity (the fit is in closed form, no neighbourhood of a base shape). Compared in
    float64: in float32 the source coordinates (hundreds of pixels) round by ~1e-4 px, which on
    a sharp edge moves a pixel by a few hundredths of a level (up to 0.027 over 200
    similarities, seed 52813150 of this test crossed dlib's 1-level truncation), so the float32
    chip is held to the float64 one instead."""
    image, landmarks = photos[name]
    points = np.round(landmarks - 0.5)                  # dlib's integer landmark convention
    _assert_dlib_truncates(_chip(image, points, jnp.float64), _dlib_chip(image, points))
    # A random similarity of the whole photo (landmarks and image together), the chip's
    # source square kept under twice the chip's side: beyond it dlib first shrinks the photo
    # by its image pyramid (extract_chips' docstring; seed 2034396038 drew a 300.6-px square).
    a, b = np.asarray(chip_similarity(jnp.asarray(points[None] + 0.5),
                                      jnp.asarray(chip_fit_matrix())))[0, :2]
    side = np.hypot(a, b) * 150
    angle, scale = rng.uniform(-0.4, 0.4), rng.uniform(0.8, min(1.3, 0.98 * 300 / side))
    h, w = image.shape[:2]
    turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([w, h]) / 2
    moved = np.round((points - centre) @ turn.T + centre + rng.uniform(-20, 20, 2))
    chip64 = _chip(image, moved, jnp.float64)
    _assert_dlib_truncates(chip64, _dlib_chip(image, moved))
    # float32 (what training runs): within a tenth of a level everywhere, a thousandth on average.
    err32 = np.abs(_chip(image, moved, jnp.float32) - chip64)
    assert err32.max() < 0.1 and err32.mean() < 0.005, (err32.max(), err32.mean())


def test_chips_are_differentiable_in_the_image(photos, rng):
    image, landmarks = photos["astronaut"]
    fit = jnp.asarray(chip_fit_matrix())
    weights = jnp.asarray(rng.normal(size=(1, 150, 150, 3)), jnp.float32)

    def loss(img):
        return jnp.sum(extract_chips(img, jnp.asarray(landmarks[None]), fit) * weights)

    grad = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(image[None], jnp.float32)))
    assert np.isfinite(grad).all()
    # Linear in the image: the gradient is where the chip samples (the face), zero far away.
    assert np.abs(grad[0, :40, :40]).max() == 0 and np.abs(grad).sum() > 0
