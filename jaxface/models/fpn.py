"""Feature pyramid fusion (Lin et al. 2017) of the attended stages C2..C5 -> P2..P5."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def upsample_nearest_to(x_BxhxwxC: jax.Array, height: int, width: int) -> jax.Array:
    """Nearest-neighbour upsampling to (height, width) (PyTorch's ``interpolate(size=...)``
    index rule floor(i * h / H)), also for non-integer ratios such as 7 -> 14 -> 28."""
    h, w = x_BxhxwxC.shape[1:3]
    rows = (jnp.arange(height) * h) // height
    cols = (jnp.arange(width) * w) // width
    return x_BxhxwxC[:, rows][:, :, cols]


class FPN(nnx.Module):
    """1x1 lateral convs to ``width`` channels, top-down nearest upsampling + addition, and a
    3x3 conv on each merged level (FPN's anti-aliasing conv) -> P2..P5, finest first."""

    def __init__(self, in_channels: tuple[int, ...], width: int = 256, *, rngs: nnx.Rngs):
        self.lateral = nnx.List([nnx.Conv(c, width, (1, 1), rngs=rngs) for c in in_channels])
        self.output = nnx.List([nnx.Conv(width, width, (3, 3), padding=((1, 1), (1, 1)),
                                         rngs=rngs) for _ in in_channels])

    def __call__(self, stages: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        laterals = [conv(x) for conv, x in zip(self.lateral, stages, strict=True)]
        merged = [laterals[-1]]
        for lat in reversed(laterals[:-1]):
            merged.append(lat + upsample_nearest_to(merged[-1], *lat.shape[1:3]))
        merged.reverse()
        return tuple(conv(m) for conv, m in zip(self.output, merged, strict=True))
