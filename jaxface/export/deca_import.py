"""``jaxface import-deca`` / ``import-emoca``: a released DECA or EMOCA checkpoint -> a model
folder like ``jaxface export``'s, so ``reconstruct``, ``fit --model``, ``now-predict`` and
:func:`~jaxface.reconstruction.model_folder.load_model` use it unchanged.

The network is configs/deca.py's (or configs/emoca.py's): DECA's architecture and
conventions. The face model comes from DECA's data folder (``--flame-dir``), under DECA's
file names (:data:`DECA_DATA_FILES`); its sizes must be those the checkpoint was trained with
(100 shape, 50 expression, 50 albedo components for DECA's release).
"""

from __future__ import annotations

import os
import pathlib

import ml_collections

from jaxface.assets import AssetError
from jaxface.export.model_dir import write_model
from jaxface.export.serialized import add_exports
from jaxface.models.deca_checkpoint import (
    DECA_SOURCE,
    EMOCA_SOURCE,
    ignored_keys,
    read_torch_tensors,
    variables_from_checkpoint,
)
from jaxface.reconstruction.assets import load_assets
from jaxface.reconstruction.model_folder import abstract_network, named_leaves, unflatten_variables

# configs.face_model field -> its file in DECA's data folder (DECA's README says where each
# comes from: FLAME 2020 from flame.is.tue.mpg.de, the rest from DECA's download script, the
# albedo from the BFM-to-FLAME conversion).
DECA_DATA_FILES = {
    "flame_path": "generic_model.pkl",
    "landmark_embedding_path": "landmark_embedding.npy",
    "uv_template_path": "head_template.obj",
    "albedo_path": "FLAME_albedo_from_BFM.npz",
    "uv_face_eye_mask_path": "uv_face_eye_mask.png",
    "uv_face_mask_path": "uv_face_mask.png",
    "fixed_displacement_path": "fixed_displacement_256.npy",
}
_WHERE = {"generic_model.pkl": "FLAME 2020 from flame.is.tue.mpg.de",
          "FLAME_albedo_from_BFM.npz": "github.com/TimoBolkart/BFM_to_FLAME"}


def use_deca_data_folder(cfg: ml_collections.ConfigDict, flame_dir: str | os.PathLike
                         ) -> ml_collections.ConfigDict:
    """Points ``cfg.face_model`` at DECA's data folder (in place); a missing file is an error
    naming it and where it comes from."""
    flame_dir = pathlib.Path(flame_dir)
    for field, name in DECA_DATA_FILES.items():
        path = flame_dir / name
        if not path.is_file():
            where = _WHERE.get(name, "DECA's fetch_data.sh")
            raise AssetError(f"{path}: missing from --flame-dir (DECA's data folder; get it "
                             f"from {where})")
        cfg.face_model[field] = str(path)
    return cfg


def expression_mode(tensors: dict, n_exp: int, with_global: bool = False) -> str:
    """EMOCA's expression encoder's variant from its output size: n_exp (expression only),
    n_exp + 3 (and the jaw; the global rotation instead with ``with_global``), n_exp + 6
    (global and jaw)."""
    key = "deca.E_expression.layers.2.bias"
    if key not in tensors:
        raise AssetError(f"no {key}: not an EMOCA checkpoint with a ResNet50 expression "
                         "encoder (EMOCA's 'deca_clone' backbone)")
    extra = tensors[key].shape[0] - n_exp
    modes = {0: "exp", 3: "exp_global" if with_global else "exp_jaw", 6: "exp_global_jaw"}
    if extra not in modes:
        raise AssetError(f"EMOCA's expression encoder predicts {tensors[key].shape[0]} values;"
                         f" with {n_exp} expression coefficients jaxface knows "
                         f"{sorted(n_exp + k for k in modes)}")
    return modes[extra]


def import_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike,
                      cfg: ml_collections.ConfigDict, layout: str, serialize: bool = True,
                      global_pose: bool = False, platforms=("cpu",)) -> dict:
    """Reads a DECA (``layout="deca"``) or EMOCA (``"emoca"``) checkpoint into ``cfg``'s
    network (configs/deca.py or configs/emoca.py, face model set) and writes the model
    folder ``out``; ``serialize``: also the ``jax.export`` artifacts (as ``jaxface export``).
    ``global_pose``: an EMOCA expression encoder with 3 extra outputs predicts the global
    rotation (not the jaw). Returns {"out", "mapped", "ignored", "expression_encoder"}."""
    if layout not in ("deca", "emoca"):
        raise ValueError(f"layout must be 'deca' or 'emoca', got {layout!r}")
    tensors = read_torch_tensors(checkpoint, DECA_SOURCE if layout == "deca" else EMOCA_SOURCE)
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    assets = load_assets(cfg)
    if layout == "emoca":
        cfg.model.expression_encoder = expression_mode(tensors, assets.sizes["exp"],
                                                       global_pose)
    graphdef, params_like, stats_like = abstract_network(cfg, assets)
    names_shapes = [(name, leaf.shape) for name, leaf in named_leaves(params_like, stats_like)]
    flat = variables_from_checkpoint(tensors, names_shapes, layout, str(checkpoint))
    params, stats = unflatten_variables(flat, params_like, stats_like)
    source = str(pathlib.Path(checkpoint).resolve())
    ignored = ignored_keys(tensors, layout)
    out = write_model(out, cfg, assets, params, stats,
                      {"checkpoint": source, "layout": layout, "tensors_read": len(flat),
                       "tensors_ignored": len(ignored)})
    add_exports(out, f"Imported by `jaxface import-{layout}` from {source}.",
                (None,) if serialize else (), platforms)
    return {"out": str(out), "mapped": len(flat), "ignored": ignored,
            "expression_encoder": cfg.model.expression_encoder}
