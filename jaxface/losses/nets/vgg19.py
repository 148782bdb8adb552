"""VGG19 (torchvision's ``vgg19`` features) in Flax NNX, for the ID-MRF loss.

Only the convolutional trunk is built, up to the deepest layer asked for (relu4_2 for ID-MRF).
Weights come from the user's torchvision ``vgg19-dcbb9e9d.pth`` (or an ``.npz`` of its
state_dict): ``features.<i>.weight`` / ``.bias`` for the i-th module of torchvision's
``features`` Sequential. Inputs are RGB in [0, 1]; ImageNet normalisation happens inside.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface.assets import AssetError
from jaxface.models.torchvision import load_torchvision_state_dict

# torchvision's configuration "E": channels per conv, "M" = 2x2 max pool.
VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
SOURCE = "torchvision's VGG19_Weights.IMAGENET1K_V1 (download.pytorch.org/models/vgg19-*.pth)"


def _layer_plan(until: str):
    """[(name, kind, torchvision index, in, out)] up to and including ``until``."""
    plan, block, conv_in_block, in_ch = [], 1, 0, 3
    for item in VGG19_LAYERS:
        if item == "M":
            plan.append((f"pool{block}", "pool", len(plan), in_ch, in_ch))
            block, conv_in_block = block + 1, 0
        else:
            conv_in_block += 1
            plan.append((f"conv{block}_{conv_in_block}", "conv", len(plan), in_ch, item))
            plan.append((f"relu{block}_{conv_in_block}", "relu", len(plan), item, item))
            in_ch = item
    names = [p[0] for p in plan]
    if until not in names:
        raise ValueError(f"VGG19 has no layer {until!r} (names like relu4_2, conv3_1)")
    return plan[: names.index(until) + 1]


class VGG19Features(nnx.Module):
    """torchvision VGG19's trunk up to ``until``; returns the named activations asked for."""

    def __init__(self, until: str = "relu4_2", *, rngs: nnx.Rngs):
        self.plan = _layer_plan(until)
        self.convs = nnx.List([nnx.Conv(i, o, (3, 3), padding=((1, 1), (1, 1)), rngs=rngs)
                               for _, kind, _, i, o in self.plan if kind == "conv"])
        self.conv_indices = tuple(idx for _, kind, idx, _, _ in self.plan if kind == "conv")

    def __call__(self, rgb_BxHxWx3: jax.Array, layers=("relu3_2", "relu4_2")
                 ) -> dict[str, jax.Array]:
        x = (rgb_BxHxWx3 - IMAGENET_MEAN) / IMAGENET_STD
        out, convs = {}, iter(self.convs)
        for name, kind, *_ in self.plan:
            if kind == "conv":
                x = next(convs)(x)
            elif kind == "relu":
                x = jax.nn.relu(x)
            else:
                x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                          "VALID")
            if name in layers:
                out[name] = x
        missing = set(layers) - set(out)
        if missing:
            raise ValueError(f"VGG19 built up to {self.plan[-1][0]} cannot give {missing}")
        return out


def load_vgg19(module: VGG19Features, weights: str | os.PathLike | dict) -> VGG19Features:
    """Copies torchvision VGG19 weights (a path or a state_dict of arrays) into ``module``."""
    sd = weights if isinstance(weights, dict) else load_torchvision_state_dict(weights, SOURCE)
    for conv, index in zip(module.convs, module.conv_indices, strict=True):
        for leaf, suffix in (("kernel", "weight"), ("bias", "bias")):
            key = f"features.{index}.{suffix}"
            if key not in sd:
                raise AssetError(f"VGG19 weights: key {key!r} missing (is this torchvision's "
                                 f"vgg19 state_dict? get it from {SOURCE})")
            value = np.asarray(sd[key], np.float32)
            if leaf == "kernel":
                value = value.transpose(2, 3, 1, 0)
            var = getattr(conv, leaf)
            if value.shape != var.get_value().shape:
                raise AssetError(f"VGG19 weights: {key!r} has shape {value.shape} (Flax "
                                 f"layout), expected {var.get_value().shape}")
            var[...] = jnp.asarray(value)
    return module


def perceptual_network(config) -> VGG19Features | None:
    """The VGG19 an experiment config needs for ID-MRF (``config.loss.mrf > 0``), loaded from
    ``config.perceptual.vgg19_path``; None when ID-MRF is off. Fails before training when
    the file is not given or missing, naming it."""
    if not config.loss.mrf:
        return None
    path = config.perceptual.vgg19_path
    if not path:
        raise AssetError("loss.mrf > 0 (ID-MRF) needs perceptual.vgg19_path: torchvision's "
                         f"vgg19-dcbb9e9d.pth or an .npz of it ({SOURCE}); or set loss.mrf=0")
    return load_vgg19(VGG19Features("relu4_2", rngs=nnx.Rngs(0)), path)
