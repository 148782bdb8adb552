"""Loading torchvision's ImageNet ResNet50 weights into :class:`~jaxface.models.ResNet50`.

The weights are the user's file (torchvision's ``resnet50-0676ba61.pth`` / ``-11ad3fa6.pth``,
or an ``.npz`` of the same state_dict, e.g. written by ``numpy.savez(f, **{k: v.numpy()})``);
nothing is downloaded. Names map one to one (the module mirrors torchvision's layout):
``conv.kernel`` (kh, kw, in, out) <- ``conv.weight`` (out, in, kh, kw), BatchNorm ``scale``,
``bias``, ``mean``, ``var`` <- ``weight``, ``bias``, ``running_mean``, ``running_var``. The
classifier (``fc.*``) and ``num_batches_tracked`` are not used.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
from flax import nnx

from jaxface.assets import AssetError, install_hint
from jaxface.models.resnet import ResNet50

SOURCE = ("torchvision's ResNet50_Weights.IMAGENET1K_V1/V2 release "
          "(download.pytorch.org/models/resnet50-*.pth)")
_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
         "var": "running_var"}


def load_torchvision_state_dict(path: str | os.PathLike, source: str = SOURCE
                                ) -> dict[str, np.ndarray]:
    """A torchvision state_dict as NumPy arrays, from a ``.pth`` (needs torch) or ``.npz``;
    ``source`` says where to get the file when it is missing."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AssetError(f"weights not found: {path} (get them from {source})")
    if path.suffix == ".npz":
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    try:
        import torch
    except ImportError as e:
        raise AssetError(f"reading {path} needs torch ({install_hint('torch')}), or "
                         "convert it to .npz with numpy.savez") from e
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    return {k: v.detach().cpu().numpy() for k, v in sd.items()}


def load_torchvision_resnet50(module: ResNet50, weights: str | os.PathLike | dict) -> ResNet50:
    """Copies torchvision ResNet50 weights (a path or a state_dict of arrays) into ``module``
    in place and returns it. With more than 3 input channels (prior channels), the first
    convolution's extra input filters are zero, so the pretrained RGB response is kept."""
    sd = weights if isinstance(weights, dict) else load_torchvision_state_dict(weights)
    updates = []
    for path, var in nnx.to_flat_state(nnx.state(module)):
        name = ".".join(str(p) for p in path[:-1] + (_LEAF[path[-1]],))
        if name not in sd:
            raise AssetError(f"ResNet50 weights: key {name!r} missing (is this a torchvision "
                             "resnet50 state_dict?)")
        value = np.asarray(sd[name], np.float32)
        if path[-1] == "kernel":
            value = value.transpose(2, 3, 1, 0)
        want = var.get_value().shape
        if name == "conv1.weight" and value.shape[:2] == want[:2] and value.shape[2] <= want[2]:
            extra = np.zeros(want[:2] + (want[2] - value.shape[2],) + want[3:], np.float32)
            value = np.concatenate([value, extra], axis=2)
        if value.shape != want:
            raise AssetError(f"ResNet50 weights: {name!r} has shape {value.shape} (as Flax "
                             f"layout), the module needs {want}")
        updates.append((path, value))
    nnx.update(module, nnx.from_flat_state(updates))
    return module


def initialize_from_imagenet(network, weights: str | os.PathLike) -> None:
    """Starts the regressor's two ResNet50s (E_c's and E_d's backbones) from torchvision's
    ImageNet weights (a path), in place; the attention, FPN and heads keep their
    initialisation. A run resumed or started with ``train.init_from`` overrides them."""
    state_dict = load_torchvision_state_dict(weights)
    load_torchvision_resnet50(network.coarse.backbone, state_dict)
    load_torchvision_resnet50(network.detail_encoder.backbone, state_dict)
