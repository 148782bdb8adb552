"""The coarse encoder E_c (GRPAM-ResNet50 + FC head) and the detail encoder E_d (ResNet50).

E_c's head input, with GRPAM on: RGA-S/RGA-C in line after each stage C2..C5 (stage k+1
sees stage k's attended output), FPN fusion of the attended C2..C5 to P2..P5,
each level globally average-pooled and the four concatenated (4 x fpn_width = 1024 values by
default), so every pyramid level reaches the FC layers with equal weight. With GRPAM off
(the ablation's plain network, DECA's): the pooled C5 (2048). The head is DECA's: Linear ->
1024, ReLU, Linear -> the parameter vector.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models.fpn import FPN
from jaxface.models.resnet import STAGE_CHANNELS, ResNet50, stage_sizes
from jaxface.models.rga import RGA


class MLPHead(nnx.Module):
    """Linear -> ReLU -> Linear (DECA's encoder layers). The last layer starts near zero
    (weights 1e-2 of the usual scale: small enough that an untrained encoder predicts about
    the mean face, frontal pose, the base camera and ambient light, large enough that every
    layer gets a gradient from the first step), instead of random heads and poses: training
    moves away from a sensible face rather than first undoing a random one."""

    def __init__(self, in_features: int, hidden: int, out_features: int, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(in_features, hidden, rngs=rngs)
        self.fc2 = nnx.Linear(hidden, out_features, rngs=rngs, kernel_init=(
            nnx.initializers.variance_scaling(1e-4, "fan_in", "truncated_normal")))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(jax.nn.relu(self.fc1(x)))


class GRPAM(nnx.Module):
    """RGA after each stage, then FPN fusion -> pooled pyramid feature (B, 4 * width).

    The RGA modules sit *in line* in the backbone (``ResNet50(x, after_stage=grpam.rga)``):
    each stage's attended output is what the next stage sees, as in the official RGA
    network; the FPN fuses the attended C2..C5.
    """

    def __init__(self, image_size: int, last_stride: int, fpn_width: int, cha_ratio: int,
                 spa_ratio: int, down_ratio: int, *, rngs: nnx.Rngs):
        sides = stage_sizes(image_size, last_stride)
        self.rga = nnx.List([
            RGA(c, side * side, cha_ratio, spa_ratio, down_ratio, rngs=rngs)
            for c, side in zip(STAGE_CHANNELS, sides, strict=True)])
        self.fpn = FPN(STAGE_CHANNELS, fpn_width, rngs=rngs)

    def __call__(self, attended_stages: tuple[jax.Array, ...]) -> jax.Array:
        """The pooled P2..P5, concatenated, from the attended C2..C5."""
        pyramid = self.fpn(attended_stages)
        return jnp.concatenate([jnp.mean(p, axis=(1, 2)) for p in pyramid], -1)


class CoarseEncoder(nnx.Module):
    """E_c: image (+ priors) -> the coarse parameter vector (B, n_params).

    Args:
      in_channels: 3 + the prior channels (:func:`~jaxface.models.priors.prior_channels`).
      n_params: length of the code (:func:`~jaxface.models.params.param_sizes`).
      image_size: square input side, static (RGA's widths depend on it).
      use_grpam: RGA + FPN (on) or the plain pooled ResNet50 feature (off).
    """

    def __init__(self, in_channels: int, n_params: int, image_size: int, use_grpam: bool = True,
                 last_stride: int = 1, fpn_width: int = 256, cha_ratio: int = 8,
                 spa_ratio: int = 8, down_ratio: int = 8, hidden: int = 1024, *,
                 rngs: nnx.Rngs):
        self.backbone = ResNet50(in_channels, last_stride, rngs=rngs)
        self.grpam = nnx.data(
            GRPAM(image_size, last_stride, fpn_width, cha_ratio, spa_ratio, down_ratio,
                  rngs=rngs) if use_grpam else None)
        features = 4 * fpn_width if use_grpam else STAGE_CHANNELS[-1]
        self.head = MLPHead(features, hidden, n_params, rngs=rngs)
        self.image_size = image_size
        self.in_channels = in_channels

    def features(self, x_BxHxWxC: jax.Array) -> jax.Array:
        """The head's input feature (B, 1024 or 2048)."""
        _check_input(x_BxHxWxC, self.image_size, self.in_channels)
        if self.grpam is None:
            return self.backbone(x_BxHxWxC).pooled
        return self.grpam(self.backbone(x_BxHxWxC, after_stage=self.grpam.rga).stages)

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        return self.head(self.features(x_BxHxWxC))


class ResNetEncoder(nnx.Module):
    """DECA's ``ResnetEncoder``: ResNet50 (last stride 2) on the image, the pooled C5 through
    Linear -> hidden, ReLU, Linear -> (B, code_dim). E_d (code_dim = the detail code's 128)
    and EMOCA's expression encoder (expression coefficients, optionally + pose)."""

    def __init__(self, image_size: int, code_dim: int = 128, hidden: int = 1024,
                 in_channels: int = 3, *, rngs: nnx.Rngs):
        self.backbone = ResNet50(in_channels, 2, rngs=rngs)
        self.head = MLPHead(STAGE_CHANNELS[-1], hidden, code_dim, rngs=rngs)
        self.image_size = image_size
        self.in_channels = in_channels

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        _check_input(x_BxHxWxC, self.image_size, self.in_channels)
        return self.head(self.backbone(x_BxHxWxC).pooled)


def _check_input(x: jax.Array, image_size: int, in_channels: int) -> None:
    if x.ndim != 4 or x.shape[1:] != (image_size, image_size, in_channels):
        raise ValueError(f"the encoder was built for (B, {image_size}, {image_size}, "
                         f"{in_channels}) inputs and got {tuple(x.shape)}")
