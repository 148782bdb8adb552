"""The training and evaluation steps as pure functions.

``train_step(state, batch, frozen_state) -> (state, metrics)`` is per-device code in the pmap
style — gradients, metrics and batch statistics are averaged with ``lax.pmean`` over the
``'data'`` axis, BatchNorm normalises with the statistics of the whole global batch — mapped
over a device mesh with ``jax.shard_map`` (pmap's successor) and jit-compiled. With one device
the mesh has one entry and the program is the same. Each device's share of the batch holds
whole identity groups, so the shape/detail consistency swaps stay inside a device.

Stages (DECA's): ``pretrain`` trains E_c on the landmark terms only (no rendering), ``coarse``
trains E_c on the whole coarse objective; ``detail`` trains E_d and F_d with E_c frozen (its
BatchNorm in inference mode, no gradient).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import PartitionSpec as P

from jaxface.data.augment import augment
from jaxface.geometry.framing import frame_batch
from jaxface.losses import coarse_loss, detail_loss
from jaxface.losses.regularization import parameter_supervision, swap_within_groups
from jaxface.models import apply
from jaxface.reconstruction.assets import jit_with_assets
from jaxface.reconstruction.predict import (
    coarse_geometry,
    detail_normal_map,
    predict_params,
    reconstruction_errors,
    render_geometry,
    shape_only_render,
)

# The parameter subtrees each stage trains.
STAGES = {"pretrain": ("coarse",), "coarse": ("coarse",),
          "detail": ("detail_encoder", "detail_decoder")}
# Batch keys the train step reads (ground truth stays on the host unless loss.ground_truth).
TRAIN_KEYS = ("image", "landmarks", "mask")
GROUND_TRUTH_KEYS = ("shape", "expression", "pose")
AXIS = "data"


class TrainState(NamedTuple):
    """Everything a run carries from step to step."""

    params: object        # nnx.State of the network's parameters
    batch_stats: object   # nnx.State of its BatchNorm statistics
    opt_state: object     # optax state of the trained subtrees
    step: jax.Array       # int32 scalar
    rng: jax.Array        # raw PRNG key data (uint32), checkpointable as a plain array


class FrozenNets(NamedTuple):
    """The frozen loss networks' static parts; their weights travel as ``frozen_state``
    (``{"identity": ..., "vgg": ...}``), an argument, so they are not baked into programs."""

    identity: object = None   # losses.IdentityNetwork when loss.identity > 0
    vgg: object = None        # nnx.GraphDef of VGG19Features when loss.mrf > 0


def trainable(tree, stage: str) -> dict:
    """The subtrees of ``params`` (or of its gradient) that ``stage`` trains."""
    return {name: tree[name] for name in STAGES[stage]}


def with_trainable(params, sub: dict):
    """``params`` with its trained subtrees replaced (a copy; the tree structure is kept so
    the next call hits the compilation cache)."""
    out = jax.tree.map(lambda x: x, params)
    for name, value in sub.items():
        out[name] = value
    return out


IMAGE_TERMS = ("pixel", "mask", "scl", "identity")   # the coarse terms that need a render


def coarse_loss_of(geo, p, batch, cfg, assets, frozen, frozen_state, batch_scale):
    """The coarse loss of decoded parameters and their geometry: renders (DECA's face region
    over the input) only when an image term is on (not in the landmark-only pretraining)."""
    size = cfg.model.image_size
    kwargs = {"batch_scale": batch_scale}
    rendered = batch["image"]
    if any(cfg.loss[k] for k in IMAGE_TERMS):
        out = render_geometry(geo, batch["image"], assets, cfg, for_loss=True)
        rendered = out.image
        if frozen.identity is not None:
            net, state = frozen.identity, frozen_state["identity"]
            seen = (shape_only_render(out, geo["light"], batch["image"])
                    if cfg.loss.identity_shape_only else out.image)
            kwargs["identity_image"] = jax.lax.stop_gradient(
                net.apply(state, batch["image"], batch["landmarks"]))
            kwargs["identity_rendered"] = net.apply(state, seen, batch["landmarks"])
    # Landmarks in units of the image size (DECA's ndc / 2), so weights do not depend on it.
    return coarse_loss(cfg.loss, batch["image"], rendered, batch["mask"],
                       geo["landmarks"] / size, batch["landmarks"] / size, p, **kwargs)


def coarse_objective(graphdef, params, batch_stats, batch, assets, cfg, group_size: int,
                     frozen: FrozenNets, frozen_state, batch_scale: float = 1.0):
    """The coarse loss of a (per-device) batch -> (loss, (metrics, new batch statistics)).
    L_sc: the whole coarse loss again on renders whose shape beta is swapped inside each
    identity group (only with groups of > 1 image). ``batch_scale``: the global batch over
    this device's (for the batch-summed regulariser). Also the pretraining stage's (its
    config turns the image terms off, so nothing is rendered)."""
    p, new_stats = predict_params(graphdef, params, batch_stats, batch, cfg, assets.sizes, True)
    geo = coarse_geometry(p, assets, cfg)
    loss, terms = coarse_loss_of(geo, p, batch, cfg, assets, frozen, frozen_state,
                                  batch_scale)
    if cfg.loss.ground_truth:
        terms["ground_truth"] = parameter_supervision(p, batch)
        loss = loss + cfg.loss.ground_truth * terms["ground_truth"]
    if cfg.loss.shape_consistency and group_size > 1:
        swapped = p | {"shape": swap_within_groups(p["shape"], group_size)}
        geo_sc = coarse_geometry(swapped, assets, cfg)
        terms["shape_consistency"], _ = coarse_loss_of(geo_sc, swapped, batch, cfg, assets,
                                                        frozen, frozen_state, batch_scale)
        loss = loss + cfg.loss.shape_consistency * terms["shape_consistency"]
    return loss, ({"loss": loss, **terms}, new_stats)


def _detail_loss_of(geo, displacement, batch, assets, cfg, frozen, frozen_state, batch_scale):
    rendered = render_geometry(geo, batch["image"], assets, cfg,
                               detail_normal_map(geo["vertices"], displacement, assets,
                                                 cfg.render.backend),
                               for_loss=True).image
    vgg = {}
    if frozen.vgg is not None:
        net = nnx.merge(frozen.vgg, frozen_state["vgg"])
        mask = batch["mask"]
        vgg = {"vgg_image": jax.lax.stop_gradient(net(batch["image"] * mask)),
               "vgg_rendered": net(rendered * mask)}
    return detail_loss(cfg.loss, batch["image"], rendered, batch["mask"], displacement,
                       assets.uv_face_mask, **vgg, batch_scale=batch_scale)


def detail_objective(graphdef, params, batch_stats, batch, assets, cfg, group_size: int,
                     frozen: FrozenNets, frozen_state, batch_scale: float = 1.0):
    """The detail loss -> (loss, (metrics, new batch statistics)); E_c runs frozen. L_dc: the
    detail loss again with the detail codes swapped inside each identity group."""
    p, _ = predict_params(graphdef, params, batch_stats, batch, cfg, assets.sizes, False)
    p = jax.lax.stop_gradient(p)
    geo = coarse_geometry(p, assets, cfg)
    code, stats = apply(graphdef, params, batch_stats, "encode_detail", batch["image"],
                        train=True)
    jaw = p["pose"][:, 3:]
    disp, stats = apply(graphdef, params, stats, "decode_detail", code, p["exp"], jaw,
                        train=True)
    loss, terms = _detail_loss_of(geo, disp, batch, assets, cfg, frozen, frozen_state,
                                  batch_scale)
    if cfg.loss.detail_consistency and group_size > 1:
        disp_dc, _ = apply(graphdef, params, stats, "decode_detail",
                           swap_within_groups(code, group_size), p["exp"], jaw, train=True)
        terms["detail_consistency"], _ = _detail_loss_of(geo, disp_dc, batch, assets, cfg,
                                                         frozen, frozen_state, batch_scale)
        loss = loss + cfg.loss.detail_consistency * terms["detail_consistency"]
    return loss, ({"loss": loss, **terms}, stats)


OBJECTIVES = {"pretrain": coarse_objective, "coarse": coarse_objective,
              "detail": detail_objective}


def prepare_batch(batch: dict, key: jax.Array, first_index: jax.Array, cfg) -> dict:
    """Frames the faces at the network's input: with ``data.augment``, DECA's random crop
    (and the optional jitters) with a key from each image's global index in the batch (so the
    result does not depend on how the batch is split over devices); else DECA's test crop."""
    size = cfg.model.image_size
    if not cfg.data.augment:
        return frame_batch(batch, size, cfg.data.crop_scale)
    n = batch["image"].shape[0]
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(first_index + jnp.arange(n))

    def one(k, image, landmarks, mask):
        out = augment(k, image[None], landmarks[None], mask[None], size,
                      tuple(cfg.data.crop_scale_range), cfg.data.shift_jitter,
                      cfg.data.colour_jitter)
        return tuple(x[0] for x in out)

    image, landmarks, mask = jax.vmap(one)(keys, batch["image"], batch["landmarks"],
                                           batch["mask"])
    return batch | {"image": image, "landmarks": landmarks, "mask": mask}


OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}


LR_SCHEDULES = ("constant", "cosine")


def learning_rate(cfg) -> float | optax.Schedule:
    """``optim.lr``, constant (the paper's), or with ``optim.schedule="cosine"`` decayed
    along a half cosine from ``optim.lr`` at step 0 to 0 at ``train.steps`` (counted by the
    optimiser from the start of this run's own state: a run started from ``init_from``
    begins its schedule afresh)."""
    if cfg.optim.schedule not in LR_SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {LR_SCHEDULES}, got "
                         f"{cfg.optim.schedule!r}")
    if cfg.optim.schedule == "constant":
        return cfg.optim.lr
    return optax.cosine_decay_schedule(cfg.optim.lr, max(int(cfg.train.steps), 1))


def with_optimiser_of(cfg, saved_optim: Mapping):
    """A copy of ``cfg`` with the optimiser of a saved run's config (``optim``): what that
    run's checkpointed optimiser state is shaped by. Runs saved before ``optim.schedule``
    existed had a constant learning rate."""
    cfg = cfg.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.optim.name = saved_optim["name"]
        cfg.optim.schedule = saved_optim.get("schedule", "constant")
    return cfg


def make_optimizer(cfg) -> optax.GradientTransformation:
    """``optim.name`` ("adam": the paper's; "sgd") at :func:`learning_rate`."""
    if cfg.optim.name not in OPTIMIZERS:
        raise ValueError(f"optim.name must be one of {sorted(OPTIMIZERS)}, got "
                         f"{cfg.optim.name!r}")
    return OPTIMIZERS[cfg.optim.name](learning_rate(cfg))


def data_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh over ``devices`` (default: all) with the ``'data'`` axis."""
    devices = jax.devices() if devices is None else devices
    return jax.make_mesh((len(devices),), (AXIS,), devices=devices,
                         axis_types=(jax.sharding.AxisType.Auto,))


def make_train_step(graphdef, assets, cfg, group_size: int, mesh: jax.sharding.Mesh,
                    frozen: FrozenNets | None = None):
    """-> jit-compiled ``train_step(state, batch, frozen_state) -> (state, metrics)``
    (:func:`train_step_function` with ``assets`` passed as an argument, not baked into the
    program)."""
    return jit_with_assets(train_step_function(graphdef, cfg, group_size, mesh, frozen),
                           assets, donate_argnums=0)


def train_step_function(graphdef, cfg, group_size: int, mesh: jax.sharding.Mesh,
                        frozen: FrozenNets | None = None):
    """-> ``train_step(state, batch, frozen_state, assets) -> (state, metrics)``, to be
    jit-compiled.

    ``batch``: a dict of global arrays (B, ...) with :func:`train_keys`, sharded over ``mesh``
    (:func:`shard_batch`). ``graphdef`` must come from a network whose BatchNorms reduce
    over ``'data'`` (:func:`jaxface.models.network.sync_batch_norm`). A step whose loss or
    gradient is not finite leaves params, optimiser and statistics unchanged (the step
    counter still advances, so the data stay in step) and reports ``finite = 0``.
    """
    stage = cfg.train.stage
    objective = OBJECTIVES[stage]
    optimizer = make_optimizer(cfg)
    frozen = frozen or FrozenNets()

    def per_device(state: TrainState, batch, frozen_state, assets):
        local = batch["image"].shape[0]
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        batch = prepare_batch(batch, key, jax.lax.axis_index(AXIS) * local, cfg)
        grad_fn = jax.grad(objective, argnums=(1, 2), has_aux=True)
        (grads, _), (metrics, stats) = grad_fn(graphdef, state.params, state.batch_stats,
                                               batch, assets, cfg, group_size, frozen,
                                               frozen_state, float(mesh.size))
        grads = jax.lax.pmean(trainable(grads, stage), AXIS)
        metrics = jax.lax.pmean(metrics, AXIS)
        stats = jax.lax.pmean(stats, AXIS)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
        current = trainable(state.params, stage)
        updates, opt_state = optimizer.update(grads, state.opt_state, current)
        updated = optax.apply_updates(current, updates)

        def keep_if_finite(new, old):
            return jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)

        new_state = TrainState(
            params=with_trainable(state.params, keep_if_finite(updated, current)),
            batch_stats=keep_if_finite(stats, state.batch_stats),
            opt_state=keep_if_finite(opt_state, state.opt_state),
            step=state.step + 1, rng=state.rng)
        metrics = metrics | {"grad_norm": grad_norm, "finite": finite.astype(jnp.float32)}
        return new_state, metrics

    # pmap semantics (check_vma=False): each device differentiates its own loss and the
    # gradients are averaged explicitly. With varying-axis checks on, JAX would instead sum
    # the replicated parameters' gradients over devices itself, and the pmean above would
    # then leave n times the gradient.
    return jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(AXIS), P(), P()),
                         out_specs=(P(), P()), check_vma=False)


def replicate(tree, mesh: jax.sharding.Mesh):
    """``tree`` placed as the train step returns its state (replicated over ``mesh``): the
    first step's inputs then have the later steps' shardings, so the step (and the eval
    step, which sees the state before and after training) is traced and compiled once.
    Every host holds the whole (equal) tree, as :func:`shard_batch` its batch."""
    sharding = jax.sharding.NamedSharding(mesh, P())
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def train_keys(cfg) -> tuple[str, ...]:
    """The batch keys ``cfg``'s train step reads."""
    return TRAIN_KEYS + (GROUND_TRUTH_KEYS if cfg.loss.ground_truth else ())


def shard_batch(batch: dict, mesh: jax.sharding.Mesh, keys=TRAIN_KEYS) -> dict:
    """This host's share of a global batch (NumPy) as global arrays split over ``'data'``."""
    sharding = jax.sharding.NamedSharding(mesh, P(AXIS))
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(batch[k]))
            for k in keys}


def init_state(params, batch_stats, cfg, seed: int = 0, stage: str | None = None) -> TrainState:
    """A fresh state: ``cfg``'s optimizer over ``stage``'s trainable parameters (default
    ``cfg.train.stage``), step 0, the data/augmentation key of ``seed``."""
    opt_state = make_optimizer(cfg).init(trainable(params, stage or cfg.train.stage))
    return TrainState(params, batch_stats, opt_state, jnp.zeros((), jnp.int32),
                      jax.random.key_data(jax.random.key(seed)))


def abstract_state(params, batch_stats, cfg, stage: str | None = None) -> TrainState:
    """Shapes and dtypes of :func:`init_state` (params may be abstract): the target a
    checkpoint of a ``stage`` run is restored into."""
    return jax.eval_shape(lambda p, s: init_state(p, s, cfg, 0, stage), params, batch_stats)


def evaluate_batch(graphdef, params, batch_stats, batch, assets, cfg) -> dict:
    """Per-image errors of the coarse reconstruction (inference mode) on faces framed with
    DECA's test crop (``data.crop_scale``), jit-able:
    ``landmark_px`` (mean 2-D landmark distance in pixels of the network's input) and, when
    the batch has synthetic ground truth, the 3-D errors of
    :func:`~jaxface.reconstruction.predict.ground_truth_errors` (mm, rigid and
    similarity-aligned)."""
    batch = frame_batch(batch, cfg.model.image_size, cfg.data.crop_scale)
    p, _ = predict_params(graphdef, params, batch_stats, batch, cfg, assets.sizes, False)
    geo = coarse_geometry(p, assets, cfg)
    return reconstruction_errors(geo, p["shape"], batch, assets.model)


def make_eval_step(graphdef, assets, cfg):
    """-> jit ``eval_step(params, batch_stats, batch) -> per-image errors``
    (:func:`evaluate_batch`)."""
    return jit_with_assets(lambda params, stats, batch, assets: evaluate_batch(
        graphdef, params, stats, batch, assets, cfg), assets)
