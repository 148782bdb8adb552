"""Image-level losses: L_pix, the face-mask photometric loss (FMCL) and SCL (masked SSIM).

Images are (B, H, W, C) in [0, 1]; masks (B, H, W, 1) weights in [0, 1] (1 = face). Every
loss returns a scalar, the mean over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_jvp
def safe_norm(x: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis with a zero (not NaN) gradient at x = 0."""
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


@safe_norm.defjvp
def _safe_norm_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    n = safe_norm(x)
    unit = x / jnp.where(n > 0, n, 1.0)[..., None]
    return n, jnp.sum(unit * dx, axis=-1)


def pixel_loss(image_BxHxWxC: jax.Array, rendered_BxHxWxC: jax.Array,
               norm: str = "l2") -> jax.Array:
    """L_pix = 1/(CHW) sum (I - I_r)^2 ("l2", the paper's) or |I - I_r| ("l1", DECA's)."""
    diff = image_BxHxWxC - rendered_BxHxWxC
    if norm == "l2":
        return jnp.mean(diff * diff)
    if norm == "l1":
        return jnp.mean(jnp.abs(diff))
    raise ValueError(f"pixel loss norm must be 'l1' or 'l2', got {norm!r}")


def face_mask_photometric(image_BxHxWxC: jax.Array, rendered_BxHxWxC: jax.Array,
                          mask_BxHxWx1: jax.Array) -> jax.Array:
    """FMCL, L_mask = sum_i rho_i ||I_i - I_r,i||_2 / sum_i rho_i per image (the norm over
    colour channels), batch mean. An image with an empty mask contributes 0."""
    per_pixel = safe_norm(image_BxHxWxC - rendered_BxHxWxC)          # (B, H, W)
    rho = mask_BxHxWx1[..., 0]
    total = jnp.sum(rho, axis=(1, 2))
    loss = jnp.sum(rho * per_pixel, axis=(1, 2)) / jnp.where(total > 0, total, 1.0)
    return jnp.mean(loss)


def structural_consistency(image_BxHxWxC: jax.Array, rendered_BxHxWxC: jax.Array,
                           mask_BxHxWx1: jax.Array, data_range: float = 1.0) -> jax.Array:
    """SCL = 1 - SSIM over the face-mask pixels, with global (not windowed) statistics.

    Per image and channel: weighted means mu, variances sigma^2 and covariance of I and I_r
    with the mask as weights (sum rho (x - mu)^2 / sum rho), then SSIM = luminance x
    contrast-structure with eta1 = (0.01 L)^2, eta2 = (0.03 L)^2; averaged over channels,
    then 1 - SSIM averaged over the batch. An image with an empty mask contributes 0.
    """
    eta1, eta2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    rho = mask_BxHxWx1
    total = jnp.sum(rho, axis=(1, 2))                                  # (B, 1)
    safe_total = jnp.where(total > 0, total, 1.0)

    def mean(v):
        return jnp.sum(rho * v, axis=(1, 2)) / safe_total               # (B, C)

    mu_x, mu_y = mean(image_BxHxWxC), mean(rendered_BxHxWxC)
    dx = image_BxHxWxC - mu_x[:, None, None]
    dy = rendered_BxHxWxC - mu_y[:, None, None]
    var_x, var_y, cov = mean(dx * dx), mean(dy * dy), mean(dx * dy)
    ssim = ((2 * mu_x * mu_y + eta1) / (mu_x**2 + mu_y**2 + eta1)
            * (2 * cov + eta2) / (var_x + var_y + eta2))
    loss = jnp.where(total[:, 0] > 0, 1.0 - jnp.mean(ssim, axis=-1), 0.0)
    return jnp.mean(loss)
