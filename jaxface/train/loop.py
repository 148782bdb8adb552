"""The training run: assets, data, the jit-compiled step, logging, checkpoints and resume.

    jaxface train --config=configs/synthetic.py --config.train.workdir=runs/train

Resume order: the newest checkpoint in ``train.workdir`` (params, optimiser, step, RNG); the
data iterator restarts at the restored step, so the run continues where it stopped.
"""

from __future__ import annotations

import json
import pathlib
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface import flame
from jaxface.data.pipeline import batch_iterator, grouped_batches
from jaxface.models import build_network, param_sizes
from jaxface.render import face_topology
from jaxface.render.backend import resolve_backend
from jaxface.train.checkpoint import Checkpoints
from jaxface.train.step import init_state, make_coarse_step


class NonFiniteLossError(FloatingPointError):
    """A step produced NaN/inf; the run stops without saving that state."""


def load_assets(cfg):
    """(FLAME model, albedo model, render topology, parameter sizes) of a config."""
    model, albedo = flame.load_face_model(cfg.face_model)
    sizes = param_sizes(cfg.face_model.n_shape, albedo.basis.shape[-1],
                        cfg.face_model.n_expression)
    topology = face_topology(model.faces, model.uvs, model.uv_faces, cfg.render.uv_size,
                             cfg.render.backend)
    return model, albedo, topology, sizes


def train(cfg, progress: bool = True) -> dict:
    """Runs (or resumes) coarse training to ``cfg.train.steps``; returns the last metrics."""
    from tqdm import tqdm

    workdir = pathlib.Path(cfg.train.workdir)
    data_dir = pathlib.Path(cfg.data.dir)
    if not (data_dir / "dataset_info.json").is_file():
        raise FileNotFoundError(f"no dataset at data.dir={data_dir}: write one with `jaxface "
                                f"synth --out {data_dir}` or `jaxface prepare`")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(cfg.to_json_best_effort(indent=2))
    backend = resolve_backend(cfg.render.backend)
    assets = load_assets(cfg)
    graphdef, params, stats = nnx.split(build_network(cfg.model, assets[3], cfg.train.seed),
                                        nnx.Param, nnx.BatchStat)
    state = init_state(params, stats, cfg, cfg.train.seed)
    checkpoints = Checkpoints(workdir)
    if checkpoints.latest_step() is not None:
        state = checkpoints.restore(state)
    start = int(state.step)
    print(f"jaxface train: render backend {backend}, devices {jax.devices()}, "
          f"{'resuming at' if start else 'starting at'} step {start} of {cfg.train.steps}")
    identity = None
    if cfg.loss.identity:
        from jaxface.losses import identity_network

        identity = identity_network(cfg.identity)
        print(f"jaxface train: identity loss with the {identity.backend} network")
    identity_state = None if identity is None else identity.state
    step_fn = make_coarse_step(graphdef, assets, cfg, identity)
    dataset = grouped_batches(data_dir, cfg.data.identities_per_batch, cfg.train.seed)
    batches = batch_iterator(dataset, start, cfg.data.workers)
    stop = {"now": False}

    def request_stop(signum, frame):
        stop["now"] = True

    previous = signal.signal(signal.SIGTERM, request_stop)
    metrics = {}
    log = open(workdir / "metrics.jsonl", "a")
    try:
        bar = tqdm(range(start, cfg.train.steps), initial=start, total=cfg.train.steps,
                   desc="train", disable=not progress)
        for step in bar:
            batch = {k: jnp.asarray(np.asarray(v)) for k, v in next(batches).items()}
            t0 = time.perf_counter()
            new_state, metrics = step_fn(state, batch, identity_state)
            loss = float(metrics["loss"])
            if not np.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss} at step {step}; the last checkpoint is kept (step "
                    f"{checkpoints.latest_step()}); lower optim.lr or check the data")
            state = new_state
            done = step + 1
            if done % cfg.train.log_every == 0 or done == cfg.train.steps:
                record = {"step": done, "seconds": round(time.perf_counter() - t0, 4),
                          **{k: float(v) for k, v in metrics.items()}}
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{loss:.4f}")
            if done % cfg.train.checkpoint_every == 0 or done == cfg.train.steps or stop["now"]:
                checkpoints.save(done, state)
            if stop["now"]:
                print(f"jaxface train: stopped by SIGTERM after step {done} (checkpoint saved)")
                break
    except KeyboardInterrupt:
        if checkpoints.latest_step() != int(state.step):
            checkpoints.save(int(state.step), state)
        print(f"jaxface train: interrupted; checkpoint saved at step {int(state.step)}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        checkpoints.wait()
        checkpoints.close()
        log.close()
    return {k: float(v) for k, v in metrics.items()} | {"step": int(state.step)}
