import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.augment import augment
from jaxface.geometry.framing import crop_box, crop_faces, frame_batch, resize_batch


def _blob_images(rng, b, h, w, n_points=5):
    """Images with one bright blob, at the first of a few landmarks, and those landmarks."""
    lmk = rng.uniform([0.35 * w, 0.35 * h], [0.65 * w, 0.65 * h],
                      size=(b, n_points, 2)).astype(np.float32)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    image = np.zeros((b, h, w, 3), np.float32)
    for i in range(b):
        x, y = lmk[i, 0]
        image[i] += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0)[..., None]   # sigma 2
    return image, lmk


def test_crop_box_is_decas_rule(rng):
    """DECA: centre of the landmarks' box, side = scale x ((right - left) + (bottom - top)) / 2."""
    lmk = rng.uniform(10, 200, size=(3, 68, 2))
    scale = rng.uniform(1.2, 2.0, size=3)
    centre, side = crop_box(jnp.asarray(lmk), jnp.asarray(scale))
    lo, hi = lmk.min(1), lmk.max(1)
    np.testing.assert_allclose(np.asarray(centre), (lo + hi) / 2, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(side), scale * ((hi - lo).sum(-1) / 2), rtol=1e-5)


def test_landmarks_stay_on_their_content_in_decas_crops(rng):
    """A blob drawn at a landmark is found at the cropped landmark, for random DECA crops;
    the crop centres the landmarks' box and spans scale x its mean extent."""
    b, h, w, size = 4, 96, 96, 64
    image, lmk = _blob_images(rng, b, h, w)
    key = jax.random.key(int(rng.integers(2**31)))
    out, lmk2, _ = jax.jit(augment, static_argnums=(4,))(
        key, jnp.asarray(image), jnp.asarray(lmk), jnp.ones((b, h, w, 1)), size)
    out, lmk2 = np.asarray(out), np.asarray(lmk2)
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    lo, hi = lmk2.min(1), lmk2.max(1)
    np.testing.assert_allclose((lo + hi) / 2, size / 2, atol=1e-3)   # the box is centred
    scale = size / ((hi - lo).sum(-1) / 2)                          # its extent sets the crop
    assert np.all((scale > 1.4 - 1e-4) & (scale < 1.8 + 1e-4))
    for i in range(b):
        x, y = lmk2[i, 0]
        zoom = size / (scale[i] * (lmk[i].max(0) - lmk[i].min(0)).sum() / 2)
        if min(x, y, size - x, size - y) < 5 * 2.0 * zoom:   # the crop cuts the blob's tail
            continue
        wgt = out[i, ..., 0]
        centre = np.array([(wgt * cols).sum(), (wgt * rows).sum()]) / wgt.sum()
        np.testing.assert_allclose(centre, [x, y], atol=0.05)


def test_mask_moves_with_the_image_and_outside_is_zero(rng):
    b, h, w = 2, 48, 48
    image = jnp.asarray(rng.uniform(0.2, 1.0, size=(b, h, w, 3)), jnp.float32)
    mask = jnp.ones((b, h, w, 1))
    lmk = jnp.asarray(rng.uniform(20, 28, size=(b, 68, 2)), jnp.float32)
    out, lmk2, mask2 = crop_faces(image, lmk, mask, 32, jnp.full((b,), 12.0))
    # A crop 12 x the small landmark box reaches past the photo: zeros there, in image and mask.
    out, mask2 = np.asarray(out), np.asarray(mask2)
    outside = mask2[..., 0] == 0
    assert outside.any() and (~outside).any()
    assert np.abs(out[outside]).max() < 0.5 * np.abs(out[~outside]).mean()


def test_colour_jitter_only_changes_colours(rng):
    image = jnp.asarray(rng.uniform(0.2, 0.8, size=(2, 16, 16, 3)), jnp.float32)
    lmk = jnp.asarray(rng.uniform(4, 12, size=(2, 68, 2)), jnp.float32)
    mask = jnp.ones((2, 16, 16, 1))
    key = jax.random.key(int(rng.integers(2**31)))
    plain = augment(key, image, lmk, mask, 16)
    jittered = augment(key, image, lmk, mask, 16, colour_jitter=0.2)
    np.testing.assert_allclose(np.asarray(jittered[1]), np.asarray(plain[1]))
    np.testing.assert_array_equal(np.asarray(jittered[2]), np.asarray(plain[2]))
    assert not np.allclose(np.asarray(jittered[0]), np.asarray(plain[0]))
    assert 0.0 <= float(jittered[0].min()) and float(jittered[0].max()) <= 1.0


def test_frame_batch_uses_the_test_crop_and_keeps_other_keys(rng):
    b, h, w = 2, 80, 80
    image, lmk = _blob_images(rng, b, h, w)
    batch = {"image": jnp.asarray(image), "landmarks": jnp.asarray(lmk),
             "mask": jnp.ones((b, h, w, 1)), "identity": jnp.arange(b)}
    out = frame_batch(batch, 40, scale=1.5)
    lo, hi = np.asarray(out["landmarks"]).min(1), np.asarray(out["landmarks"]).max(1)
    np.testing.assert_allclose(40 / ((hi - lo).sum(-1) / 2), 1.5, rtol=1e-4)
    assert out["image"].shape == (b, 40, 40, 3) and out["identity"] is batch["identity"]


def test_resize_batch_scales_landmarks_with_the_image(rng):
    batch = {"image": jnp.asarray(rng.uniform(size=(2, 64, 48, 3)), jnp.float32),
             "mask": jnp.ones((2, 64, 48, 1), jnp.float32),
             "landmarks": jnp.asarray([[[24.0, 32.0]], [[12.0, 8.0]]], jnp.float32),
             "identity": jnp.arange(2)}
    out = resize_batch(batch, 32)
    assert out["image"].shape == (2, 32, 32, 3) and out["mask"].shape == (2, 32, 32, 1)
    np.testing.assert_allclose(np.asarray(out["landmarks"]), [[[16.0, 16.0]], [[8.0, 4.0]]])
    assert out["identity"] is batch["identity"] and resize_batch(out, 32) is out
