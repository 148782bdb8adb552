"""The VGGFace2 face-recognition ResNet50 (Cao et al. 2018) for the identity loss.

Caffe's ResNet50 layout (:class:`~jaxface.models.ResNet50` with ``caffe=True``); the weights are
the user's ``resnet50_ft_weight.pkl`` (cydonia999/VGGFace2-pytorch's conversion, shipped with
DECA's data): a pickled dict of torchvision-style names to ndarrays, 8631-class classifier
unused. Its input (as DECA prepares it): BGR x 255 minus the VGGFace2 mean, a 10-pixel margin
cropped from the 224 crop and resized back to 224; the feature is the pooled 2048 vector.
"""

from __future__ import annotations

import os
import pathlib

import jax
import numpy as np
from flax import nnx

from jaxface.assets import AssetError
from jaxface.flame.pickle_compat import load_pickle
from jaxface.models.resnet import ResNet50
from jaxface.models.torchvision import load_torchvision_resnet50

MEAN_BGR = np.array([91.4953, 103.8827, 131.0912], np.float32)
SOURCE = ("DECA's data (data/resnet50_ft_weight.pkl), from cydonia999/VGGFace2-pytorch's "
          "resnet50_ft weights")
MARGIN = 10  # pixels cropped on each side of a 224 x 224 face crop (DECA)


def vggface2_resnet50(*, rngs: nnx.Rngs) -> ResNet50:
    return ResNet50(3, 2, caffe=True, rngs=rngs)


def load_vggface2(module: ResNet50, path: str | os.PathLike) -> ResNet50:
    """Reads ``resnet50_ft_weight.pkl`` (or an ``.npz`` of the same dict) into ``module``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AssetError(f"VGGFace2 weights not found: {path} (get them from {SOURCE})")
    if path.suffix == ".npz":
        with np.load(path) as data:
            weights = {k: data[k] for k in data.files}
    else:
        with open(path, "rb") as f:
            weights = load_pickle(f)
    if not isinstance(weights, dict):
        raise AssetError(f"{path}: expected a dict of arrays, found {type(weights).__name__}")
    return load_torchvision_resnet50(module, {k: np.asarray(v) for k, v in weights.items()})


def vggface2_input(rgb_BxHxWx3: jax.Array, size: int = 224) -> jax.Array:
    """DECA's preprocessing of [0, 1] RGB face crops (H = W = 224) for the network."""
    bgr = rgb_BxHxWx3[..., ::-1] * 255.0 - MEAN_BGR
    h, w = bgr.shape[1:3]
    cropped = bgr[:, MARGIN:h - MARGIN, MARGIN:w - MARGIN]
    return jax.image.resize(cropped, (bgr.shape[0], size, size, 3), "bilinear")


def identity_features(network: ResNet50, rgb_BxHxWx3: jax.Array) -> jax.Array:
    """The 2048-d identity descriptors (B, 2048) of face crops (eval-mode network)."""
    return network(vggface2_input(rgb_BxHxWx3)).pooled

