"""The coarse training step as pure functions: encoder -> FLAME -> render -> losses -> Adam.

``train_step(state, batch)`` is built by :func:`make_coarse_step` from the static pieces (the
network's graphdef, the face model, the renderer topology, the config) and jit-compiled; the
state is a pytree (:class:`TrainState`), so checkpoints and data parallelism handle it as is.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxface import flame
from jaxface.data.augment import resize_batch
from jaxface.losses import coarse_loss
from jaxface.models import (
    apply,
    camera_from_code,
    decode_params,
    flame_pose,
    light_from_code,
    network_input,
)
from jaxface.render import project_landmarks, render


class TrainState(NamedTuple):
    """Everything a run carries from step to step."""

    params: object        # nnx.State of the network's parameters
    batch_stats: object   # nnx.State of its BatchNorm statistics
    opt_state: object     # optax state of the trained subset
    step: jax.Array       # int32 scalar
    rng: jax.Array        # raw PRNG key data (uint32), checkpointable as a plain array


def coarse_forward(graphdef, params, batch_stats, batch, assets, cfg, train: bool):
    """Predicts and renders a batch -> (outputs dict, updated batch statistics)."""
    model, albedo_model, topology, sizes = assets
    size = cfg.model.image_size
    x = network_input(batch["image"], batch["landmarks"], batch["mask"], cfg.model.use_priors,
                      cfg.model.landmark_channels, cfg.model.landmark_sigma)
    code, batch_stats = apply(graphdef, params, batch_stats, "encode_coarse", x, train=train)
    p = decode_params(code, sizes)
    out = flame.forward(model, p["shape"], p["exp"], flame_pose(p["pose"]))
    cam = camera_from_code(p["cam"], cfg.train.base_scale)
    light = light_from_code(p["light"])
    albedo = jnp.clip(flame.albedo_map(albedo_model, p["tex"]), 0.0, 1.0)
    r = render(out.vertices, cam, albedo, light, topology, (size, size),
               background=batch["image"], backend=cfg.render.backend)
    landmarks = project_landmarks(out.landmarks3d, cam, (size, size))
    return {"params": p, "cam": cam, "image": r.image, "alpha": r.alpha,
            "landmarks": landmarks, "vertices": out.vertices}, batch_stats


def coarse_objective(graphdef, params, batch_stats, batch, assets, cfg, identity=None):
    """The coarse loss of a batch (train mode) -> (loss, (metrics, new batch statistics))."""
    batch = resize_batch(batch, cfg.model.image_size)
    pred, new_stats = coarse_forward(graphdef, params, batch_stats, batch, assets, cfg, True)
    size = cfg.model.image_size
    ids = {}
    if identity is not None:
        net, state = identity
        ids = {"identity_image": jax.lax.stop_gradient(net.apply(state, batch["image"])),
               "identity_rendered": net.apply(state, pred["image"])}
    # Landmarks in units of the image size (DECA's ndc / 2), so weights do not depend on it.
    loss, terms = coarse_loss(cfg.loss, batch["image"], pred["image"], batch["mask"],
                              pred["landmarks"] / size, batch["landmarks"] / size,
                              pred["params"], **ids)
    return loss, ({"loss": loss, **terms}, new_stats)


def make_optimizer(cfg) -> optax.GradientTransformation:
    return optax.adam(cfg.optim.lr)


def make_coarse_step(graphdef, assets, cfg, identity_net=None):
    """-> jit-compiled ``train_step(state, batch, identity_state) -> (state, metrics)``:
    the coarse encoder's parameters are updated (E_d and F_d are untouched).
    ``identity_net``: the frozen :class:`~jaxface.losses.IdentityNetwork` when
    ``loss.identity > 0``; its weights come in as ``identity_state`` (an argument, so they
    are not baked into the compiled program)."""
    optimizer = make_optimizer(cfg)

    def step(state: TrainState, batch, identity_state):
        identity = None if identity_net is None else (identity_net, identity_state)
        grad_fn = jax.grad(coarse_objective, argnums=(1, 2), has_aux=True)
        (grads, _), (metrics, stats) = grad_fn(graphdef, state.params, state.batch_stats,
                                               batch, assets, cfg, identity)
        updates, opt_state = optimizer.update(grads["coarse"], state.opt_state,
                                              state.params["coarse"])
        # A copy with the same tree structure as the input, so the next call hits the cache.
        params = jax.tree.map(lambda x: x, state.params)
        params["coarse"] = optax.apply_updates(state.params["coarse"], updates)
        metrics["grad_norm"] = optax.tree.norm(grads["coarse"])
        return state._replace(params=params, batch_stats=stats,
                              opt_state=opt_state, step=state.step + 1), metrics

    return jax.jit(step)


def init_state(params, batch_stats, cfg, seed: int = 0) -> TrainState:
    opt_state = make_optimizer(cfg).init(params["coarse"])
    return TrainState(params, batch_stats, opt_state, jnp.zeros((), jnp.int32),
                      jax.random.key_data(jax.random.key(seed)))
