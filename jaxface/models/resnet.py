"""ResNet50 (v1.5, torchvision's layout) in Flax NNX, NHWC, returning every stage's output.

Attribute names follow torchvision's ``resnet50`` (``conv1``, ``bn1``, ``layer1.0.conv2``,
``layer4.2.downsample.1``, ...) so a torchvision state_dict maps onto the module by name (see
:mod:`jaxface.models.torchvision`). Padding is explicit and symmetric, as in PyTorch (Flax's
"SAME" pads stride-2 convolutions asymmetrically, which would shift features by a pixel).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

STAGE_BLOCKS = (3, 4, 6, 3)     # ResNet50
STAGE_WIDTHS = (64, 128, 256, 512)
EXPANSION = 4                   # bottleneck output = 4 x width
STAGE_CHANNELS = tuple(w * EXPANSION for w in STAGE_WIDTHS)  # C2..C5: 256, 512, 1024, 2048

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for convolutions.
_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, rngs: nnx.Rngs) -> nnx.Conv:
    """A bias-free k x k convolution with PyTorch's symmetric padding k // 2."""
    pad = kernel // 2
    return nnx.Conv(in_ch, out_ch, (kernel, kernel), strides=(stride, stride),
                    padding=((pad, pad), (pad, pad)), use_bias=False, kernel_init=_conv_init,
                    rngs=rngs)


def batch_norm(channels: int, *, rngs: nnx.Rngs, epsilon: float = 1e-5) -> nnx.BatchNorm:
    """BatchNorm with PyTorch's defaults (momentum 0.1 there = 0.9 here, eps 1e-5)."""
    return nnx.BatchNorm(channels, momentum=0.9, epsilon=epsilon, rngs=rngs)


def max_pool_3x3_s2(x_BxHxWxC: jax.Array) -> jax.Array:
    """PyTorch's MaxPool2d(3, stride=2, padding=1): padded with -inf."""
    return jax.lax.reduce_window(x_BxHxWxC, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                 ((0, 0), (1, 1), (1, 1), (0, 0)))


def max_pool_3x3_s2_ceil(x_BxHxWxC: jax.Array) -> jax.Array:
    """Caffe's pooling: MaxPool2d(3, stride=2, padding=0, ceil_mode=True)."""
    pads = [(0, 0)]
    for n in x_BxHxWxC.shape[1:3]:
        out = -(-(n - 3) // 2) + 1
        pads.append((0, max(0, (out - 1) * 2 + 3 - n)))
    return jax.lax.reduce_window(x_BxHxWxC, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                 pads + [(0, 0)])


class Bottleneck(nnx.Module):
    """1x1 -> 3x3 (carrying the stride, v1.5) -> 1x1 x4, with a projection shortcut when the
    shape changes. ``stride_in_1x1``: the stride on the first 1x1 instead (Caffe's v1, as in
    the VGGFace2 ResNet50)."""

    def __init__(self, in_ch: int, width: int, stride: int, stride_in_1x1: bool = False, *,
                 rngs: nnx.Rngs):
        out_ch = width * EXPANSION
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv(in_ch, width, 1, s1, rngs=rngs)
        self.bn1 = batch_norm(width, rngs=rngs)
        self.conv2 = conv(width, width, 3, s3, rngs=rngs)
        self.bn2 = batch_norm(width, rngs=rngs)
        self.conv3, self.bn3 = conv(width, out_ch, 1, rngs=rngs), batch_norm(out_ch, rngs=rngs)
        project = stride != 1 or in_ch != out_ch
        self.downsample = nnx.data(nnx.List([conv(in_ch, out_ch, 1, stride, rngs=rngs),
                                             batch_norm(out_ch, rngs=rngs)]) if project else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.downsample is not None:
            x = self.downsample[1](self.downsample[0](x))
        return jax.nn.relu(x + y)


class ResNetFeatures(NamedTuple):
    """Stage outputs C2..C5 (B, h, w, C) and the globally average-pooled C5 (B, 2048)."""

    stages: tuple[jax.Array, jax.Array, jax.Array, jax.Array]
    pooled: jax.Array


class ResNet50(nnx.Module):
    """ResNet50 without its classifier: 23,508,032 parameters for 3 input channels.

    Args:
      in_channels: 3 for RGB; more when prior channels are stacked on the image.
      last_stride: stride of stage 4 (2 in torchvision; 1 keeps C5 at 1/16 of the input, as
        the official RGA network does, so attention on C5 has enough positions).
      caffe: Caffe's ResNet50 (the VGGFace2 model): strides on the bottlenecks' first 1x1
        and the stem's max pool without padding, rounding up.
    """

    def __init__(self, in_channels: int = 3, last_stride: int = 2, caffe: bool = False, *,
                 rngs: nnx.Rngs):
        self.caffe = caffe
        self.conv1 = conv(in_channels, 64, 7, 2, rngs=rngs)
        self.bn1 = batch_norm(64, rngs=rngs)
        in_ch = 64
        strides = (1, 2, 2, last_stride)
        for i, (blocks, width, stride) in enumerate(zip(STAGE_BLOCKS, STAGE_WIDTHS, strides,
                                                        strict=True)):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(in_ch, width, stride if b == 0 else 1, caffe,
                                        rngs=rngs))
                in_ch = width * EXPANSION
            setattr(self, f"layer{i + 1}", nnx.List(layer))
        self.last_stride = last_stride

    def stages(self):
        return (self.layer1, self.layer2, self.layer3, self.layer4)

    def __call__(self, x_BxHxWxC: jax.Array, after_stage=None) -> ResNetFeatures:
        """-> every stage's output and the pooled last one.

        ``after_stage``: optional four callables, one per stage, applied *in line* to that
        stage's output before the next stage sees it (the official RGA network's place for
        its attention modules); the returned stages are their outputs.
        """
        x = jax.nn.relu(self.bn1(self.conv1(x_BxHxWxC)))
        x = max_pool_3x3_s2_ceil(x) if self.caffe else max_pool_3x3_s2(x)
        outs = []
        for i, layer in enumerate(self.stages()):
            for block in layer:
                x = block(x)
            if after_stage is not None:
                x = after_stage[i](x)
            outs.append(x)
        return ResNetFeatures(stages=tuple(outs), pooled=jnp.mean(x, axis=(1, 2)))


def stage_sizes(image_size: int, last_stride: int = 2) -> tuple[int, int, int, int]:
    """Spatial side of C2..C5 for a square input (PyTorch's floor arithmetic)."""
    side = (image_size + 2 * 3 - 7) // 2 + 1       # conv1, stride 2
    side = (side + 2 - 3) // 2 + 1                 # max pool, stride 2
    sizes = [side]
    for stride in (2, 2, last_stride):
        side = (side + 2 - 3) // stride + 1
        sizes.append(side)
    return tuple(sizes)
