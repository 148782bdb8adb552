"""Writing a model folder (the layout is :mod:`jaxface.reconstruction.model_folder`'s, plus
``*.jaxexport`` and a README from :mod:`jaxface.export.serialized`) from a training run's
checkpoint: what inference needs of a run, nothing more — no optimiser state and no loss
networks; the folder can be copied anywhere."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import ml_collections
import numpy as np

from jaxface import flame
from jaxface.reconstruction.assets import FaceAssets, face_model_arrays, load_assets
from jaxface.reconstruction.model_folder import (
    CONFIG,
    FACE_MODEL,
    MANIFEST,
    VARIABLES,
    abstract_network,
    flatten_variables,
    read_config,
)
from jaxface.train.checkpoint import best_variables, restore_state
from jaxface.train.step import abstract_state, with_optimiser_of


def load_run(workdir: str | os.PathLike, which: str = "best"):
    """A training run's config and inference variables -> (cfg, assets, graphdef, params,
    batch_stats, step, the checkpoint folder used). ``which``: "best" (the best eval
    checkpoint, or the last when the run has no best) or "last"."""
    workdir = pathlib.Path(workdir)
    cfg = read_config(workdir / CONFIG)
    cfg = with_optimiser_of(cfg, cfg.optim)
    assets = load_assets(cfg)
    graphdef, params, stats = abstract_network(cfg, assets)
    like = abstract_state(params, stats, cfg)
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    source = "best" if which == "best" and (workdir / "best").is_dir() and any(
        (workdir / "best").iterdir()) else "checkpoints"
    if source == "best":
        try:
            best = restore_state(workdir, best_variables(like), source)
        except (ValueError, KeyError):   # a run from before the best kept only these
            best = best_variables(restore_state(workdir, like, source))
        return (cfg, assets, graphdef, best["params"], best["batch_stats"], int(best["step"]),
                source)
    state = restore_state(workdir, like, source)
    return cfg, assets, graphdef, state.params, state.batch_stats, int(state.step), source


def write_model(out: str | os.PathLike, cfg, assets: FaceAssets, params, batch_stats,
                origin: dict) -> pathlib.Path:
    """Writes config, variables and face model into ``out`` (replaced whole if it exists:
    written to ``out.partial`` first, so a killed export leaves no half folder)."""
    out = pathlib.Path(out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.savez(tmp / VARIABLES, **flatten_variables(params, batch_stats))
    flame.save_flame_npz(tmp / FACE_MODEL, assets.model, face_model_arrays(assets))
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.face_model.flame_path = FACE_MODEL
    for key in ("landmark_embedding_path", "uv_template_path", "albedo_path",
                "uv_face_eye_mask_path", "uv_face_mask_path", "fixed_displacement_path"):
        cfg.face_model[key] = None
    cfg.face_model.n_albedo = int(assets.albedo.basis.shape[-1])
    (tmp / CONFIG).write_text(cfg.to_json_best_effort(indent=2))
    (tmp / MANIFEST).write_text(json.dumps({"origin": origin, "files": {}}, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


