"""The detail decoder F_d (DECA's generator): (delta, psi, theta_jaw) -> UV displacement map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models.resnet import batch_norm

# Output channels of the five upsampling blocks (DECA's), from the 128-channel seed map.
BLOCK_WIDTHS = (128, 64, 64, 32, 16)


class DetailDecoder(nnx.Module):
    """Linear -> (uv_size / 32)^2 x 128 seed map, BatchNorm, then five x (bilinear upsample x2,
    3x3 conv, BatchNorm, LeakyReLU 0.2), a 3x3 conv to one channel, tanh, x ``out_scale``.

    ``bn_epsilon`` = 0.8 in the five blocks is DECA's (``BatchNorm2d(c, 0.8)`` passes 0.8 as
    eps; probably meant as momentum). It is kept by default so DECA's trained decoder weights
    behave the same here; it makes those BatchNorms normalise weakly. Set 1e-5 for the
    textbook layer.
    """

    def __init__(self, latent_dim: int, uv_size: int = 256, out_scale: float = 0.01,
                 bn_epsilon: float = 0.8, *, rngs: nnx.Rngs):
        if uv_size % 32:
            raise ValueError(f"the detail decoder's UV size must be a multiple of 32 (five "
                             f"doublings of the seed map), got {uv_size}")
        self.seed_side = uv_size // 32
        self.linear = nnx.Linear(latent_dim, 128 * self.seed_side**2, rngs=rngs)
        self.bn0 = batch_norm(128, rngs=rngs)
        widths = (128,) + BLOCK_WIDTHS
        self.convs = nnx.List([nnx.Conv(a, b, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
                               for a, b in zip(widths[:-1], widths[1:], strict=True)])
        self.bns = nnx.List([batch_norm(b, epsilon=bn_epsilon, rngs=rngs)
                             for b in BLOCK_WIDTHS])
        self.out = nnx.Conv(BLOCK_WIDTHS[-1], 1, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
        self.out_scale = out_scale

    def __call__(self, latent_BxL: jax.Array) -> jax.Array:
        """-> displacement (B, uv_size, uv_size, 1), row 0 at v = 1."""
        b, s = latent_BxL.shape[0], self.seed_side
        # Channel-major like DECA's view(B, 128, s, s), so its Linear weights port unchanged.
        x = self.linear(latent_BxL).reshape(b, 128, s, s).transpose(0, 2, 3, 1)
        x = self.bn0(x)
        for conv, bn in zip(self.convs, self.bns, strict=True):
            h, w = x.shape[1:3]
            x = jax.image.resize(x, (b, 2 * h, 2 * w, x.shape[-1]), "bilinear")
            x = jax.nn.leaky_relu(bn(conv(x)), 0.2)
        return jnp.tanh(self.out(x)) * self.out_scale


def detail_latent(detail_code_Bx128: jax.Array, expression_BxE: jax.Array,
                  jaw_pose_Bx3: jax.Array) -> jax.Array:
    """F_d's input in DECA's order: [theta_jaw, psi, delta] (DECA's ``D_detail(cat([pose[:,
    3:], exp, detail]))``), so its trained decoder's first layer ports unchanged."""
    return jnp.concatenate([jaw_pose_Bx3, expression_BxE, detail_code_Bx128], -1)
