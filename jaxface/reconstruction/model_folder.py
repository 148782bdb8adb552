"""A model folder as inference reads it: the config, the network's variables and the face
model -> :class:`LoadedModel` (written by :mod:`jaxface.export`)::

    model/
      config.json      the run's resolved config; face_model points at face_model.npz here
      variables.npz    the network's parameters ("params/...") and BatchNorm statistics
                       ("batch_stats/..."), float32, keyed by their path in the network
      face_model.npz   the FLAME-format head, albedo space and UV regions (DECA's masks, fixed
                       displacement) the network was trained with
      manifest.json    inputs, outputs, files, origin, versions
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import NamedTuple

import jax
import ml_collections
import numpy as np
from flax import nnx

from jaxface.assets import AssetError
from jaxface.models import build_network
from jaxface.reconstruction.assets import FaceAssets, load_assets

CONFIG, VARIABLES, FACE_MODEL, MANIFEST = ("config.json", "variables.npz", "face_model.npz",
                                           "manifest.json")


class LoadedModel(NamedTuple):
    cfg: ml_collections.ConfigDict
    assets: FaceAssets
    graphdef: nnx.GraphDef
    params: nnx.State
    batch_stats: nnx.State


def _key_name(key) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    raise TypeError(f"unexpected pytree key {key!r}")


def named_leaves(params, batch_stats) -> list[tuple[str, object]]:
    """("params/<module path>" | "batch_stats/...", leaf) in the trees' leaf order."""
    out = []
    for prefix, tree in (("params", params), ("batch_stats", batch_stats)):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            names = [_key_name(k) for k in path]
            if names and names[-1] == "value":    # nnx.Variable's own leaf
                names = names[:-1]
            out.append(("/".join([prefix, *names]), leaf))
    return out


def flatten_variables(params, batch_stats) -> dict[str, np.ndarray]:
    """{"params/<module path>": array, "batch_stats/...": array} (NumPy, host)."""
    return {name: np.asarray(leaf) for name, leaf in named_leaves(params, batch_stats)}


def unflatten_variables(flat: dict, params_like, stats_like):
    """The inverse of :func:`flatten_variables` onto trees shaped like the given ones; a
    missing, extra or wrongly shaped array is an error naming it."""
    expected = named_leaves(params_like, stats_like)
    names = [name for name, _ in expected]
    missing, extra = sorted(set(names) - set(flat)), sorted(set(flat) - set(names))
    if missing or extra:
        raise AssetError(f"the variables do not match the network of the config: missing "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                         f"{extra[:5]}{'...' if len(extra) > 5 else ''}")
    for name, leaf in expected:
        if tuple(flat[name].shape) != tuple(leaf.shape):
            raise AssetError(f"variable {name} has shape {tuple(flat[name].shape)}, the "
                             f"network expects {tuple(leaf.shape)}")
    n_params = len(jax.tree.leaves(params_like))
    params = jax.tree.unflatten(jax.tree.structure(params_like),
                                [flat[n] for n in names[:n_params]])
    stats = jax.tree.unflatten(jax.tree.structure(stats_like),
                               [flat[n] for n in names[n_params:]])
    return params, stats


def abstract_network(cfg, assets: FaceAssets):
    """(graphdef, params, batch stats) of the config's network as shapes only (no init)."""
    net = nnx.eval_shape(lambda: build_network(cfg.model, assets.sizes, 0))
    return nnx.split(net, nnx.Param, nnx.BatchStat)


def model_from_config(cfg, seed: int = 0) -> LoadedModel:
    """A freshly initialised (untrained) model of a config: for benchmarks, tests and
    checking the pipeline before a run has finished."""
    assets = load_assets(cfg)
    graphdef, params, stats = nnx.split(build_network(cfg.model, assets.sizes, seed),
                                        nnx.Param, nnx.BatchStat)
    return LoadedModel(cfg, assets, graphdef, params, stats)


def read_config(path: str | os.PathLike) -> ml_collections.ConfigDict:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config (is this a training work dir or an "
                                "exported model folder?)")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


def load_model(model_dir: str | os.PathLike) -> LoadedModel:
    """An exported model folder -> the network and assets, ready for
    :func:`jaxface.reconstruction.predict.predict`."""
    model_dir = pathlib.Path(model_dir)
    cfg = read_config(model_dir / CONFIG)
    face_model = model_dir / cfg.face_model.flame_path
    cfg.face_model.flame_path = str(face_model)
    assets = load_assets(cfg)
    graphdef, params_like, stats_like = abstract_network(cfg, assets)
    path = model_dir / VARIABLES
    if not path.is_file():
        raise AssetError(f"{path}: missing (write the folder with `jaxface export`)")
    with np.load(path, allow_pickle=False) as data:
        flat = {k: data[k] for k in data.files}
    params, stats = unflatten_variables(flat, params_like, stats_like)
    return LoadedModel(cfg, assets, graphdef, params, stats)
