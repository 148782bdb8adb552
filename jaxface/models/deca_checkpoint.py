"""DECA's and EMOCA's released checkpoints as jaxface network variables.

DECA's ``deca_model.tar`` is ``torch.save({"E_flame": ..., "E_detail": ..., "D_detail": ...})``
of three PyTorch state dicts; EMOCA's ``.ckpt`` is a PyTorch Lightning checkpoint whose
``state_dict`` holds the same modules under ``deca.`` plus ``deca.E_expression``. The modules:

- ``E_flame``, ``E_detail``, ``E_expression``: DECA's ``ResnetEncoder``, a ResNet50
  (``encoder.*``, torchvision's names, no classifier) and ``layers.0`` / ``layers.2``, the
  2048 -> 1024 -> K head -> :class:`~jaxface.models.encoders.ResNetEncoder` (E_c's backbone
  and head when GRPAM and the priors are off);
- ``D_detail``: DECA's generator, ``l1.0`` (the linear seed layer), then ``conv_blocks.i``:
  BatchNorm at 0, the five upsampling blocks' convolutions at 2, 6, 10, 14, 18 and their
  BatchNorms at 3, 7, 11, 15, 19, the output convolution at 21 ->
  :class:`~jaxface.models.decoder.DetailDecoder`.

The mapping is strict: every variable of the network comes from one tensor of the right shape
and every tensor of those modules is used (BatchNorm's ``num_batches_tracked`` counters
aside); anything else is an error naming the keys. Reading never runs code from the file:
:func:`read_torch_tensors` unpickles tensors and plain containers only.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import re

import numpy as np

from jaxface.assets import AssetError, install_hint

DECA_SOURCE = ("DECA's release (deca_model.tar, linked from github.com/yfeng95/DECA's README; "
               "needs its licence)")
EMOCA_SOURCE = ("EMOCA's release (e.g. EMOCA_v2_lr_mse_20/detail/checkpoints/*.ckpt from "
                "github.com/radekd91/emoca's download script; needs its licence)")

# jaxface module path -> the checkpoint's module name, per layout.
_MODULES = {
    "deca": {"coarse": "E_flame", "detail_encoder": "E_detail", "detail_decoder": "D_detail"},
    "emoca": {"coarse": "deca.E_flame", "detail_encoder": "deca.E_detail",
              "detail_decoder": "deca.D_detail", "expression_encoder": "deca.E_expression"},
}
_HEAD_LAYER = {"fc1": "layers.0", "fc2": "layers.2"}
_DECODER_LAYER = {"linear": "l1.0", "bn0": "conv_blocks.0", "out": "conv_blocks.21"}
_PARAM_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias"}
_STAT_LEAF = {"mean": "running_mean", "var": "running_var"}


class _Inert:
    """Stands in for any class a checkpoint pickles besides tensors (Lightning's
    hyper-parameters, optimiser states): built without running anything, then ignored."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()


def _allowed(module: str, name: str) -> bool:
    """Globals a tensor-only checkpoint needs: torch's tensor and storage rebuilders, dtypes
    and plain containers. Everything else becomes :class:`_Inert`."""
    if module == "collections" and name == "OrderedDict":
        return True
    if module in ("torch._utils", "torch._tensor") and name.startswith("_rebuild"):
        return True
    if module == "torch" and (name.endswith("Storage") or name in ("Size", "device")):
        return True
    if module == "torch" and re.fullmatch(r"(b?float|int|uint|bool|complex)\d*", name):
        return True
    return module in ("torch.storage", "torch.nn.parameter") and name in (
        "UntypedStorage", "TypedStorage", "_load_from_bytes", "Parameter")


class _TensorUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return super().find_class(module, name) if _allowed(module, name) else _Inert


class _TensorPickleModule:
    """A ``pickle_module`` for ``torch.load``: tensors and containers only."""

    Unpickler = _TensorUnpickler
    load = staticmethod(lambda f, **kw: _TensorUnpickler(f, **kw).load())


def read_torch_tensors(path: str | os.PathLike, source: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``torch.save`` file (of its ``state_dict`` when it has one, as
    Lightning's checkpoints), flattened to ``"outer.inner.key"`` names ->
    float32 NumPy arrays. Other pickled objects are neither built nor run (see
    :class:`_Inert`), so ``weights_only=False`` files such as Lightning checkpoints read
    safely. Needs torch (the ``torch`` extra)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise AssetError(f"checkpoint not found: {path} (get it from {source})")
    try:
        import torch
    except ImportError as e:
        raise AssetError(f"reading {path} needs torch: {install_hint('torch')}") from e
    try:
        tree = torch.load(path, map_location="cpu", pickle_module=_TensorPickleModule,
                          weights_only=False)
    except Exception as e:   # torch raises several types for a file that is not its own
        raise AssetError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from e
    if isinstance(tree, dict) and isinstance(tree.get("state_dict"), dict):
        tree = tree["state_dict"]      # a Lightning checkpoint (EMOCA's)
    out = {}

    def walk(node, prefix):
        if isinstance(node, torch.Tensor):
            out[prefix] = node.detach().to(torch.float32).numpy()
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
    walk(tree, "")
    return out


def checkpoint_key(name: str, layout: str) -> str:
    """The checkpoint key of a jaxface variable name (``params/coarse/head/fc1/kernel`` ->
    ``E_flame.layers.0.weight``), for ``layout`` "deca" or "emoca"."""
    kind, module, *path, leaf = name.split("/")
    if module not in _MODULES[layout]:
        raise AssetError(f"the network has a module {module!r} that {layout.upper()}'s "
                         "checkpoints do not hold")
    if module == "detail_decoder":
        layer = (_DECODER_LAYER.get(path[0]) if len(path) == 1 else
                 f"conv_blocks.{(2 if path[0] == 'convs' else 3) + 4 * int(path[1])}")
    elif path[0] == "head":
        layer = _HEAD_LAYER[path[1]]
    else:   # backbone: torchvision's names
        layer = "encoder." + ".".join(path[1:])
    leaves = _PARAM_LEAF if kind == "params" else _STAT_LEAF
    return f"{_MODULES[layout][module]}.{layer}.{leaves[leaf]}"


def _as_flax(value: np.ndarray, leaf: str) -> np.ndarray:
    """PyTorch layouts -> Flax's: conv (out, in, kh, kw) -> (kh, kw, in, out), linear
    (out, in) -> (in, out)."""
    if leaf == "kernel":
        return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
    return value


def variables_from_checkpoint(tensors: dict[str, np.ndarray], names_shapes, layout: str,
                              path: str = "the checkpoint") -> dict[str, np.ndarray]:
    """jaxface's flat variables (``{"params/...": array}``, the names of
    :func:`~jaxface.reconstruction.model_folder.flatten_variables`) from a checkpoint's
    ``tensors``, for the network variables
    ``names_shapes`` ((name, shape) pairs). Strict: a missing key, a wrong shape or a tensor
    of the network's modules left unused is an error listing them."""
    wanted = {name: checkpoint_key(name, layout) for name, _ in names_shapes}
    missing = sorted(k for k in wanted.values() if k not in tensors)
    prefixes = tuple(m + "." for m in _MODULES[layout].values())
    used = set(wanted.values())
    unexpected = sorted(k for k in tensors if k.startswith(prefixes) and k not in used
                        and not k.endswith("num_batches_tracked"))
    if missing or unexpected:
        raise AssetError(
            f"{path} does not match {layout.upper()}'s layout for this network: "
            f"{len(missing)} missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
            f"{len(unexpected)} unexpected {unexpected[:4]}"
            f"{'...' if len(unexpected) > 4 else ''}")
    out = {}
    for name, shape in names_shapes:
        value = _as_flax(tensors[wanted[name]], name.rsplit("/", 1)[-1])
        if value.shape != tuple(shape):
            raise AssetError(f"{path}: {wanted[name]} has shape {value.shape} (Flax layout), "
                             f"the network's {name} needs {tuple(shape)}"
                             + _size_hint(name))
        out[name] = np.ascontiguousarray(value, np.float32)
    return out


def ignored_keys(tensors: dict[str, np.ndarray], layout: str) -> list[str]:
    """Tensors outside the network's modules (FLAME buffers, loss networks, optimiser
    state): not part of the regressor; reported, not read."""
    prefixes = tuple(m + "." for m in _MODULES[layout].values())
    return sorted(k for k in tensors if not k.startswith(prefixes))


def _size_hint(name: str) -> str:
    if "head/fc2" in name or "linear/kernel" in name:
        return (" (the code's length follows the face model: n_shape + n_albedo + n_expression"
                " + 36 for E_c, 128 + n_expression + 3 for F_d's input; DECA's are 100, 50, 50)")
    return ""
