"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) in Flax NNX.

The network of dlib's ``dnn_face_recognition_ex``: a 150 x 150 RGB chip minus the training
mean, / 256; a 7x7/2 convolution with affine (frozen BatchNorm) and ReLU, 3x3/2 max pooling;
residual blocks of two 3x3 convolutions each followed by an affine, at widths 32 (x3), 64
(x4), 128 (x3), 256 (x3), 256 (x1), the first block of each later width strided by 2 with a
2x2/2 average-pooled shortcut; global average pooling and a
linear map to the 128-d descriptor (distance < 0.6: the same person, dlib's threshold).
Residual sums of different shapes add over the larger one with zeros (dlib's ``add_prev``).

The weights are read from dlib's file by :mod:`jaxface.losses.nets.dlib_format` (the file
ships with the PyPI package ``face-recognition-models``) and cached as ``.npz``.
"""

from __future__ import annotations

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface.assets import AssetError, install_hint, packaged_model_path
from jaxface.losses.nets.dlib_format import read_layers

FILE_NAME = "dlib_face_recognition_resnet_model_v1.dat"
SOURCE = (f"the PyPI package face-recognition-models ({install_hint('face')}), file "
          f"face_recognition_models/models/{FILE_NAME}")
CHIP_SIZE = 150


def dlib_arrays(dat_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The network's weights from dlib's file, as flat arrays (the ``.npz`` cache layout):
    ``mean_rgb``, ``conv{i}_kernel`` (HWIO), ``conv{i}_bias``, ``conv{i}_stride``,
    ``conv{i}_padding``, ``affine{i}_scale`` / ``_shift``, ``fc_kernel`` (256 x 128)."""
    image_input, layers = read_layers(dat_path)
    if (image_input["rows"], image_input["cols"]) != (CHIP_SIZE, CHIP_SIZE):
        raise AssetError(f"{dat_path}: input is {image_input['rows']}x{image_input['cols']}, "
                         f"not dlib's {CHIP_SIZE}x{CHIP_SIZE} face-recognition network")
    out = {"mean_rgb": image_input["mean_rgb"]}
    convs = [layer.fields for layer in layers if layer.kind.startswith("con_")]
    affines = [layer.fields for layer in layers if layer.kind == "affine_"]
    fcs = [layer.fields for layer in layers if layer.kind == "fc_2"]
    if len(convs) != 29 or len(affines) != 29 or len(fcs) != 1:
        raise AssetError(f"{dat_path}: {len(convs)} convolutions, {len(affines)} affine and "
                         f"{len(fcs)} fc layers; dlib's face ResNet has 29, 29 and 1")
    for i, f in enumerate(convs):
        out[f"conv{i}_kernel"] = f["filters_OIHW"].transpose(2, 3, 1, 0)
        out[f"conv{i}_bias"] = f["bias"]
        out[f"conv{i}_stride"] = np.array(f["stride_y"])
        out[f"conv{i}_padding"] = np.array(f["padding_y"])
    for i, f in enumerate(affines):
        out[f"affine{i}_scale"], out[f"affine{i}_shift"] = f["gamma"], f["beta"]
    out["fc_kernel"] = fcs[0]["weights_InxOut"]
    return out


class Affine(nnx.Module):
    """dlib's ``affine_`` (a frozen BatchNorm): y = gamma x + beta per channel."""

    def __init__(self, scale: np.ndarray, shift: np.ndarray):
        self.scale = nnx.Param(jnp.asarray(scale))
        self.shift = nnx.Param(jnp.asarray(shift))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x * self.scale[...] + self.shift[...]


class DlibFaceNet(nnx.Module):
    """dlib's face descriptor network; call it on (B, 150, 150, 3) RGB chips in [0, 255]."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.mean_rgb = nnx.Variable(jnp.asarray(arrays["mean_rgb"]))
        self.convs = nnx.List([
            nnx.Conv(arrays[f"conv{i}_kernel"].shape[2], arrays[f"conv{i}_kernel"].shape[3],
                     arrays[f"conv{i}_kernel"].shape[:2],
                     strides=int(arrays[f"conv{i}_stride"]),
                     padding=[(int(arrays[f"conv{i}_padding"]),) * 2] * 2, rngs=nnx.Rngs(0))
            for i in range(29)])
        for i, conv in enumerate(self.convs):
            conv.kernel[...] = jnp.asarray(arrays[f"conv{i}_kernel"])
            conv.bias[...] = jnp.asarray(arrays[f"conv{i}_bias"])
        self.affines = nnx.List([Affine(arrays[f"affine{i}_scale"], arrays[f"affine{i}_shift"])
                                 for i in range(29)])
        self.fc_kernel = nnx.Param(jnp.asarray(arrays["fc_kernel"]))

    def _conv_affine(self, i: int, x: jax.Array) -> jax.Array:
        return self.affines[i](self.convs[i](x))

    def __call__(self, chips_BxHxWx3: jax.Array) -> jax.Array:
        """-> descriptors (B, 128)."""
        if chips_BxHxWx3.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"dlib's face network takes (B, {CHIP_SIZE}, {CHIP_SIZE}, 3) "
                             f"aligned chips, got {tuple(chips_BxHxWx3.shape)}")
        x = (chips_BxHxWx3 - self.mean_rgb[...]) / 256.0
        x = jax.nn.relu(self._conv_affine(0, x))
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                  "VALID")
        i = 1
        while i < 29:
            shortcut = x
            y = jax.nn.relu(self._conv_affine(i, x))
            y = self._conv_affine(i + 1, y)
            if self.convs[i].strides in (2, (2, 2)):  # a downsampling block
                shortcut = jax.lax.reduce_window(shortcut, 0.0, jax.lax.add, (1, 2, 2, 1),
                                                 (1, 2, 2, 1), "VALID") / 4.0
            x = jax.nn.relu(_add_zero_padded(y, shortcut))
            i += 2
        return jnp.mean(x, axis=(1, 2)) @ self.fc_kernel[...]


def _add_zero_padded(a: jax.Array, b: jax.Array) -> jax.Array:
    """dlib's ``add_prev``: the sum over the larger shape, each input zero beyond its own
    extent (rows, columns and channels pad at the end). At the last downsampling block the
    3x3/2 convolution gives 3 x 3 and the pooled shortcut 4 x 4."""
    shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape, strict=True))

    def pad(t):
        return jnp.pad(t, [(0, n - m) for n, m in zip(shape, t.shape, strict=True)])

    return pad(a) + pad(b)


def load_dlib_face_net(path: str | os.PathLike | None = None,
                       cache_dir: str | os.PathLike | None = None) -> DlibFaceNet:
    """The network from dlib's ``.dat`` (default: the one ``face-recognition-models``
    installed) or from its converted ``.npz``; a ``.dat`` is converted once into
    ``cache_dir`` (default ``~/.cache/jaxface``)."""
    path = packaged_model_path(FILE_NAME) if path is None else pathlib.Path(path)
    if not path.is_file():
        raise AssetError(f"dlib face network not found: {path} (get it from {SOURCE})")
    if path.suffix == ".npz":
        with np.load(path) as data:
            return DlibFaceNet({k: data[k] for k in data.files})
    cache = pathlib.Path(cache_dir) if cache_dir else pathlib.Path.home() / ".cache" / "jaxface"
    npz = cache / (path.stem + ".npz")
    if npz.is_file() and npz.stat().st_mtime >= path.stat().st_mtime:
        return load_dlib_face_net(npz)
    arrays = dlib_arrays(path)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = npz.with_suffix(".partial.npz")
        np.savez(partial, **arrays)
        os.replace(partial, npz)
    except OSError:
        pass  # an unwritable cache only costs re-parsing next time
    return DlibFaceNet(arrays)
