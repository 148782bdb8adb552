"""``jaxface fit``: analysis-by-synthesis — each face's FLAME shape, expression, pose, albedo,
light and camera optimised against the coarse objective, no network involved.

The objective is the training's (``cfg.loss``: DECA's face-region render over the photo, the
landmark, eye, pixel, face-mask and structural terms, the regularisers), per image. The fit
runs in stages (``configs/fit.py``), each an Adam optimisation with its own step size per
parameter group and a cosine decay:

1. ``rigid``: camera and pose on the landmark terms (nothing rendered);
2. ``expression``: + expression, still landmarks only;
3. ``photometric``: every group on the whole objective.

Starting from the mean face (all zeros) or from a trained model's prediction. Every stage
is one jit-compiled ``lax.scan`` over ``fit.chunk`` steps per call (the progress bar moves
between calls); a step whose loss or gradient is not finite is not applied.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.configs import PRETRAIN_OFF
from jaxface.data.prepare import prepare_image, prepared_batches
from jaxface.geometry.framing import frame_batch
from jaxface.infer.reconstruct import find_photos, with_views, writable_folder, write_faces
from jaxface.losses import coarse_loss
from jaxface.models import PARAM_GROUPS
from jaxface.models.params import code_of_outputs
from jaxface.reconstruction.assets import jit_with_assets, load_assets
from jaxface.reconstruction.mesh_io import label_columns, write_png
from jaxface.reconstruction.model_folder import load_model
from jaxface.reconstruction.predict import (
    coarse_geometry,
    outputs_of_params,
    predict,
    reconstruction_errors,
    render_geometry,
    with_dense_layout,
)
from jaxface.render.uv import vertices_in_uv_mask


class FitStage(NamedTuple):
    name: str
    steps: int
    groups: tuple[str, ...]   # the parameter groups it moves
    photometric: bool         # False: the landmark terms only (no render)


def fit_stages(fit_cfg) -> list[FitStage]:
    """The stages of ``cfg.fit`` (those with steps)."""
    stages = [FitStage("rigid", fit_cfg.rigid_steps, ("cam", "pose"), False),
              FitStage("expression", fit_cfg.expression_steps, ("cam", "pose", "exp"), False),
              FitStage("photometric", fit_cfg.photometric_steps, PARAM_GROUPS, True)]
    return [s for s in stages if s.steps > 0]


def mean_face(batch_size: int, sizes: dict) -> dict[str, jax.Array]:
    """The code of the mean face: every group zero (light ``(B, 9, 3)``)."""
    out = {g: jnp.zeros((batch_size, sizes[g]), jnp.float32) for g in PARAM_GROUPS}
    out["light"] = out["light"].reshape(batch_size, 9, 3)
    return out


def fit_loss(p: dict, batch: dict, assets, cfg, photometric: bool, group_size: int = 1):
    """-> (loss, terms): the coarse objective of parameters ``p`` on a batch of framed faces
    (``image``, ``landmarks`` in pixels, ``mask`` at ``model.image_size``), each image's
    terms weighted as one (the regulariser per image, not summed over the batch).
    ``group_size`` > 1: consecutive groups of that many images show one identity and share
    its shape (each group's mean; copies that start equal get equal updates and stay so)."""
    if group_size > 1:
        b, n = p["shape"].shape
        shared = jnp.mean(p["shape"].reshape(b // group_size, group_size, n), axis=1)
        p = p | {"shape": jnp.repeat(shared, group_size, axis=0)}
    loss_cfg = cfg.loss
    if not photometric:
        loss_cfg = loss_cfg.copy_and_resolve_references()
        for term in PRETRAIN_OFF:
            loss_cfg[term] = 0.0
    geo = coarse_geometry(p, assets, cfg)
    rendered = batch["image"]
    if photometric:
        rendered = render_geometry(geo, batch["image"], assets, cfg, for_loss=True).image
    size = cfg.model.image_size
    return coarse_loss(loss_cfg, batch["image"], rendered, batch["mask"],
                       geo["landmarks"] / size, batch["landmarks"] / size, p,
                       batch_scale=1.0 / batch["image"].shape[0])


def stage_optimizer(lr_cfg, stage: FitStage) -> optax.GradientTransformation:
    """Adam per parameter group with its own step size (``fit.lr.<group>``, cosine-decayed
    over the stage); the groups the stage does not move stay put."""
    def group(name):
        if name not in stage.groups:
            return optax.set_to_zero()
        return optax.adam(optax.cosine_decay_schedule(lr_cfg[name], stage.steps))
    return optax.multi_transform({g: group(g) for g in PARAM_GROUPS},
                                 {g: g for g in PARAM_GROUPS})


def make_fit_chunk(assets, cfg, stage: FitStage, optimizer, length: int, group_size: int = 1):
    """-> jit ``chunk(p, opt_state, batch) -> (p, opt_state, losses (length,))``: ``length``
    optimisation steps of ``stage``."""
    def chunk(p, opt_state, batch, assets):
        def one_step(carry, _):
            p, opt_state = carry
            (loss, _), grads = jax.value_and_grad(fit_loss, has_aux=True)(
                p, batch, assets, cfg, stage.photometric, group_size)
            updates, new_state = optimizer.update(grads, opt_state, p)
            finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads))
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)  # noqa: E731
            return (keep(optax.apply_updates(p, updates), p), keep(new_state, opt_state)), loss

        (p, opt_state), losses = jax.lax.scan(one_step, (p, opt_state), length=length)
        return p, opt_state, losses
    return jit_with_assets(chunk, assets)


def fit_batch(batch: dict, assets, cfg, init: dict | None = None, progress: bool = True,
              group_size: int = 1) -> tuple[dict, dict[str, np.ndarray]]:
    """Fits a batch of framed faces -> (parameters, {stage name: loss per step}).
    ``init``: starting parameters (a model's prediction), else the mean face.
    ``group_size``: images per identity sharing one shape (:func:`fit_loss`)."""
    from tqdm import tqdm

    batch = {k: jnp.asarray(batch[k]) for k in ("image", "landmarks", "mask")}
    p = init if init is not None else mean_face(batch["image"].shape[0], assets.sizes)
    stages = fit_stages(cfg.fit)
    curves = {}
    bar = tqdm(total=sum(s.steps for s in stages), desc="fit", unit="step",
               disable=not progress)
    for stage in stages:
        optimizer = stage_optimizer(cfg.fit.lr, stage)
        opt_state = optimizer.init(p)
        full, rest = divmod(stage.steps, cfg.fit.chunk)
        lengths = [cfg.fit.chunk] * full + ([rest] if rest else [])
        chunks = {n: make_fit_chunk(assets, cfg, stage, optimizer, n, group_size)
                  for n in set(lengths)}
        losses = []
        for n in lengths:
            p, opt_state, got = chunks[n](p, opt_state, batch)
            losses.append(np.asarray(got))
            bar.set_postfix(stage=stage.name, loss=f"{float(got[-1]):.4g}")
            bar.update(n)
        curves[stage.name] = np.concatenate(losses)
    bar.close()
    return p, curves


def write_loss_curve(path: pathlib.Path, curves: dict[str, np.ndarray]) -> None:
    """The loss against the step, one colour per stage: ``<path>.png`` and ``<path>.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, start = [], 0
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, losses in curves.items():
        steps = np.arange(start, start + len(losses))
        ax.plot(steps, losses, label=name)
        rows += [f"{name},{s},{v:.6g}" for s, v in zip(steps, losses, strict=True)]
        start += len(losses)
    ax.set(xlabel="step", ylabel="batch loss", yscale="log", title="jaxface fit")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"))
    plt.close(fig)
    path.with_suffix(".csv").write_text("stage,step,loss\n" + "\n".join(rows) + "\n")


def fit_photos(inputs, out_dir: str | os.PathLike, detector, cfg, model_dir=None,
               batch_size: int = 8, progress: bool = True) -> dict:
    """Fits every photo of ``inputs`` (files or folders) into ``out_dir``: per face the files
    of ``jaxface reconstruct`` (:func:`~jaxface.infer.reconstruct.write_face`; the detail
    mesh is the fitted surface with the fixed displacement) and, per batch, the loss curve
    ``loss_<k>.png``/``.csv``. ``model_dir``: a model folder (``jaxface export``) whose
    prediction starts the fit, with its face model (else the mean face of
    ``cfg.face_model``). Returns the report ({"ok", "failed", "load_seconds", "seconds"})."""
    start = time.perf_counter()
    photos = find_photos(inputs)           # the cheap checks first, before anything loads
    out_dir = writable_folder(out_dir)
    model = load_model(model_dir) if model_dir is not None else None
    assets = model.assets if model is not None else load_assets(cfg)
    size = cfg.model.image_size
    report = {"ok": {}, "failed": {}, "load_seconds": round(time.perf_counter() - start, 3)}
    views = _fitted_views(assets, cfg, size)
    names: dict[str, str] = {}
    photo: dict = {}
    for k, (paths, examples, batch) in enumerate(prepared_batches(
            photos, lambda path: prepare_image(path, detector, size),
            batch_size, report["failed"])):
        batch = {key: jnp.asarray(v) for key, v in batch.items()}
        init = None if model is None else model_prediction(model, batch, cfg)
        p, curves = fit_batch(batch, assets, cfg, init, progress)
        if curves:
            write_loss_curve(out_dir / f"loss_{k}", curves)
        write_faces(out_dir, paths, examples, jax.device_get(views(p, batch)), assets, cfg,
                    size, names, report, photo)
    report["seconds"] = round(time.perf_counter() - start, 3)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def model_prediction(model, batch: dict, cfg) -> dict:
    """A trained model's prediction for a batch as the fit's parameters (camera and light
    back in the code's raw units of ``cfg``)."""
    pred = predict(model.graphdef, model.params, model.batch_stats, batch, model.assets,
                   model.cfg)
    return code_of_outputs(pred, cfg.train.base_scale, cfg.model.code_convention)


ERROR_KEYS = ("landmark_px", "shape_sim_mm", "shape_mm", "mesh_sim_mm", "mesh_mm",
              "face_shape_sim_mm", "face_mesh_sim_mm")


# Ground-truth keys of synthetic data that are parameter groups of the code, as the code.
TRUTH_GROUPS = {"shape": lambda b: b["shape"], "exp": lambda b: b["expression"],
                "pose": lambda b: jnp.concatenate([b["pose"][:, :3], b["pose"][:, 6:9]], -1)}


def fit_dataset(data_dir: str, out_dir: str | os.PathLike, cfg, split: str = "val",
                images: int = 32, batch_size: int = 8, progress: bool = True,
                given: tuple[str, ...] = (), images_per_identity: int = 1) -> dict:
    """Fits the first ``images`` images of a dataset split (one per identity, unless
    ``images_per_identity`` > 1: then that many images of each identity are fitted together,
    sharing one shape — several views), framed with DECA's test crop ``data.crop_scale``,
    from the mean face and, where the data hold synthetic ground truth, measures the 3-D
    errors before (the mean face) and after. ``given``: groups of :data:`TRUTH_GROUPS` set
    to the truth and held there (an oracle, to see which ambiguity limits the fit). Writes
    ``errors.csv`` (per image), ``summary.json`` (means), ``fits.png`` (the first batch:
    input | landmarks | fitted shape | overlay) and the loss curves; returns the summary."""
    from jaxface.data.pipeline import eval_batches

    unknown = sorted(set(given) - set(TRUTH_GROUPS))
    if unknown:
        raise FitError(f"cannot give {unknown} from the truth: only {sorted(TRUTH_GROUPS)}")
    if given:
        cfg = cfg.copy_and_resolve_references()
        for group in given:
            cfg.fit.lr[group] = 0.0
    assets = load_assets(cfg)
    size = cfg.model.image_size
    if batch_size % images_per_identity:
        raise FitError(f"the batch ({batch_size}) must hold whole identities of "
                       f"{images_per_identity} images")
    batches = eval_batches(data_dir, batch_size // images_per_identity, images_per_identity,
                           split)
    if batches is None:
        raise FitError(f"{data_dir} has no {split!r} split with identities to fit")
    n_batches = min(len(batches), -(-images // batch_size))
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    views = _fitted_views(assets, cfg, size)
    errors = jit_with_assets(lambda p, batch, assets: _errors(p, batch, assets, cfg), assets)
    rows = {"before": [], "after": []}
    start = time.perf_counter()
    for k in range(n_batches):
        batch = frame_batch(jax.tree.map(jnp.asarray, batches[k]), size, cfg.data.crop_scale)
        rows["before"].append(jax.device_get(errors(mean_face(batch_size, assets.sizes),
                                                    batch)))
        init = mean_face(batch_size, assets.sizes) | {g: TRUTH_GROUPS[g](batch) for g in given}
        p, curves = fit_batch(batch, assets, cfg, init, progress, images_per_identity)
        rows["after"].append(jax.device_get(errors(p, batch)))
        write_loss_curve(out_dir / f"loss_{k}", curves)
        if k == 0:
            v = jax.device_get(views(p, batch))
            write_png(out_dir / "fits.png", label_columns(np.concatenate(
                [np.concatenate([np.asarray(batch["image"][i]), v["landmark_image"][i],
                                 v["coarse_shape"][i], v["overlay"][i]], 1)
                 for i in range(min(batch_size, 4))], 0),
                ["input", "landmarks", "fitted shape", "overlay"]))
    table = {when: {key: np.concatenate([r[key] for r in got]) for key in got[0]}
             for when, got in rows.items()}
    keys = [k for k in ERROR_KEYS if k in table["after"]]
    lines = ["image," + ",".join(f"{k}_{w}" for k in keys for w in ("before", "after"))]
    for i in range(len(table["after"][keys[0]])):
        lines.append(f"{i}," + ",".join(f"{table[w][k][i]:.4f}" for k in keys
                                        for w in ("before", "after")))
    (out_dir / "errors.csv").write_text("\n".join(lines) + "\n")
    summary = {"images": len(table["after"][keys[0]]), "split": split, "data": str(data_dir),
               "seconds": round(time.perf_counter() - start, 1), "given": list(given),
               "images_per_identity": images_per_identity,
               "mean_face": {k: float(np.mean(table["before"][k])) for k in keys},
               "fit": {k: float(np.mean(table["after"][k])) for k in keys}}
    summary["fit_over_mean_face"] = {k: summary["fit"][k] / summary["mean_face"][k]
                                     for k in keys}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _fitted_views(assets, cfg, size: int):
    """-> jit ``views(p, batch)``: the outputs and pictures of fitted parameters, as
    ``reconstruct`` writes them."""
    views = jit_with_assets(lambda p, batch, dense_uv_rast, assets: with_views(
        outputs_of_params(p, assets, cfg, size), batch, assets, cfg, size, dense_uv_rast),
        assets)
    return with_dense_layout(views, assets, cfg)


def _errors(p: dict, batch: dict, assets, cfg) -> dict:
    geo = coarse_geometry(p, assets, cfg)
    top = assets.topology
    face = vertices_in_uv_mask(assets.uv_face_mask, top.faces, top.uv_coords, top.uv_faces,
                               geo["vertices"].shape[1])
    return reconstruction_errors(geo, p["shape"], batch, assets.model, face)


class FitError(ValueError):
    """A fit that cannot start (no data); the message says why."""
