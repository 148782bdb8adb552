import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.augment import augment


def test_landmarks_stay_on_their_content(rng):
    """A bright blob drawn at a landmark is found at the augmented landmark."""
    b, h, w = 4, 64, 80
    lmk = rng.uniform([20, 20], [w - 20, h - 20], size=(b, 1, 2)).astype(np.float32)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    image = np.zeros((b, h, w, 3), np.float32)
    for i in range(b):
        for x, y in lmk[i]:
            image[i] += np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / 8.0)[..., None]
    mask = (image[..., :1] > 0.5).astype(np.float32)
    key = jax.random.key(int(rng.integers(2**31)))
    out, lmk2, mask2 = jax.jit(augment, static_argnames=("colour_jitter",))(
        key, jnp.asarray(image), jnp.asarray(lmk), jnp.asarray(mask), colour_jitter=0.0)
    out, lmk2, mask2 = map(np.asarray, (out, lmk2, mask2))
    assert not np.allclose(lmk2, lmk)  # it moved
    for i in range(b):
        for x, y in lmk2[i]:
            # The blob's intensity-weighted centre is the moved landmark.
            wgt = out[i, ..., 0]
            centre = np.array([(wgt * cols).sum(), (wgt * rows).sum()]) / wgt.sum()
            np.testing.assert_allclose(centre, [x, y], atol=0.05)
            assert mask2[i, int(y), int(x), 0] == 1


def test_colour_jitter_only_changes_colours(rng):
    image = jnp.asarray(rng.uniform(0.2, 0.8, size=(2, 16, 16, 3)), jnp.float32)
    lmk = jnp.asarray(rng.uniform(4, 12, size=(2, 68, 2)), jnp.float32)
    mask = jnp.ones((2, 16, 16, 1))
    out, lmk2, mask2 = augment(jax.random.key(0), image, lmk, mask, scale_jitter=0.0,
                               shift_jitter=0.0, colour_jitter=0.2)
    np.testing.assert_allclose(np.asarray(lmk2), np.asarray(lmk), atol=1e-5)
    assert np.asarray(mask2).min() == 1 and not np.allclose(np.asarray(out), np.asarray(image))
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_resize_batch_scales_landmarks_with_the_image(rng):
    from jaxface.data.augment import resize_batch

    batch = {"image": jnp.asarray(rng.uniform(size=(2, 64, 48, 3)), jnp.float32),
             "mask": jnp.ones((2, 64, 48, 1), jnp.float32),
             "landmarks": jnp.asarray([[[24.0, 32.0]], [[12.0, 8.0]]], jnp.float32),
             "identity": jnp.arange(2)}
    out = resize_batch(batch, 32)
    assert out["image"].shape == (2, 32, 32, 3) and out["mask"].shape == (2, 32, 32, 1)
    np.testing.assert_allclose(np.asarray(out["landmarks"]), [[[16.0, 16.0]], [[8.0, 4.0]]])
    assert out["identity"] is batch["identity"] and resize_batch(out, 32) is out
