import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.losses import face_mask_photometric, pixel_loss, structural_consistency
from tests.finite_differences import assert_directional_derivative

B, H, W, C = 3, 9, 11, 3


def _images(rng, mask_kind):
    image = rng.uniform(size=(B, H, W, C))
    rendered = np.clip(image + 0.2 * rng.normal(size=image.shape), 0, 1)
    mask = (rng.uniform(size=(B, H, W, 1)) > 0.4).astype(float)
    mask *= rng.uniform(0.3, 1.0, size=mask.shape)  # soft weights in places
    if mask_kind == "empty":
        mask[0] = 0.0
    if mask_kind == "full":
        mask[:] = 1.0
    return image, rendered, mask


def _np_fmcl(image, rendered, mask):
    out = []
    for b in range(B):
        rho = mask[b, ..., 0]
        err = np.sqrt(np.sum((image[b] - rendered[b]) ** 2, -1))
        out.append(np.sum(rho * err) / rho.sum() if rho.sum() > 0 else 0.0)
    return np.mean(out)


def _np_scl(image, rendered, mask, data_range=1.0):
    eta1, eta2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for b in range(B):
        rho = mask[b, ..., 0].reshape(-1)
        if rho.sum() == 0:
            out.append(0.0)
            continue
        ssim = []
        for c in range(C):
            x, y = image[b, ..., c].reshape(-1), rendered[b, ..., c].reshape(-1)
            mx, my = np.average(x, weights=rho), np.average(y, weights=rho)
            vx = np.average((x - mx) ** 2, weights=rho)
            vy = np.average((y - my) ** 2, weights=rho)
            cxy = np.average((x - mx) * (y - my), weights=rho)
            ssim.append((2 * mx * my + eta1) / (mx**2 + my**2 + eta1)
                        * (2 * cxy + eta2) / (vx + vy + eta2))
        out.append(1 - np.mean(ssim))
    return np.mean(out)


@pytest.mark.parametrize("mask_kind", ["random", "empty", "full"])
def test_losses_against_numpy(rng, x64, mask_kind):
    image, rendered, mask = _images(rng, mask_kind)
    args = tuple(map(jnp.asarray, (image, rendered, mask)))
    np.testing.assert_allclose(float(pixel_loss(*args[:2])), np.mean((image - rendered) ** 2),
                               rtol=1e-12)
    np.testing.assert_allclose(float(pixel_loss(*args[:2], norm="l1")),
                               np.mean(np.abs(image - rendered)), rtol=1e-12)
    np.testing.assert_allclose(float(face_mask_photometric(*args)),
                               _np_fmcl(image, rendered, mask), rtol=1e-12)
    np.testing.assert_allclose(float(structural_consistency(*args)),
                               _np_scl(image, rendered, mask), rtol=1e-10, atol=1e-14)


def test_identical_images_and_all_empty_masks_give_zero(rng, x64):
    image, _, mask = _images(rng, "random")
    img = jnp.asarray(image)
    assert float(structural_consistency(img, img, jnp.asarray(mask))) == pytest.approx(0, abs=1e-12)
    assert float(face_mask_photometric(img, img, jnp.asarray(mask))) == 0.0
    zero = jnp.zeros_like(jnp.asarray(mask))
    for loss in (face_mask_photometric, structural_consistency):
        value, grad = jax.value_and_grad(loss, argnums=1)(img, img + 0.1, zero)
        assert float(value) == 0.0 and np.all(np.asarray(grad) == 0)
    # Gradients stay finite where the images agree exactly (the norm's kink).
    grad = jax.grad(face_mask_photometric, argnums=1)(img, img, jnp.asarray(mask))
    assert np.all(np.isfinite(np.asarray(grad)))
    with pytest.raises(ValueError, match="'l1' or 'l2'"):
        pixel_loss(img, img, norm="huber")


@pytest.mark.parametrize("loss", [face_mask_photometric, structural_consistency])
def test_gradient_matches_finite_differences(rng, x64, loss):
    image, rendered, mask = _images(rng, "random")
    args = [jnp.asarray(image), jnp.asarray(rendered), jnp.asarray(mask)]
    grad = jax.grad(loss, argnums=1)(*args)
    for _ in range(3):
        assert_directional_derivative(lambda r: loss(args[0], r, args[2]), args[1], grad,
                                      rng.normal(size=rendered.shape), eps=1e-6)
