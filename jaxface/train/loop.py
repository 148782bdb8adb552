"""The training run: assets, data, the jit-compiled step, evaluation, logging, checkpoints.

    jaxface train --config=configs/synthetic.py --workdir=runs/demo

Resume order: the newest checkpoint in the work dir (params, optimiser, step, RNG; the data
pipeline restarts at the saved position, so the run continues where it stopped) ->
``train.init_from`` (another run's work dir: its params and statistics, e.g. the coarse run a
detail stage starts from) -> scratch.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface.configs import ConfigError
from jaxface.data.pipeline import batch_iterator, eval_batches, grouped_batches
from jaxface.data.records import is_tfds_folder, read_info
from jaxface.models import build_network
from jaxface.models.network import sync_batch_norm
from jaxface.models.torchvision import initialize_from_imagenet
from jaxface.reconstruction.assets import load_assets
from jaxface.render.backend import resolve_backend
from jaxface.train.checkpoint import Checkpoints, best_variables, restore_state
from jaxface.train.metrics_log import MetricsLog
from jaxface.train.preview import PREVIEW_COLUMNS, make_preview
from jaxface.train.step import (
    AXIS,
    STAGES,
    FrozenNets,
    abstract_state,
    data_mesh,
    init_state,
    make_eval_step,
    make_train_step,
    shard_batch,
    train_keys,
)


class NonFiniteLossError(FloatingPointError):
    """Too many steps in a row produced NaN/inf; the last good checkpoint is kept."""


def initialize_distributed(cfg) -> None:
    """Multi-host: ``jax.distributed.initialize`` from JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID, or (``train.distributed``) from the cluster's own
    variables (SLURM, Open MPI, ...). Single-host runs skip it."""
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        jax.distributed.initialize(address, int(os.environ["JAX_NUM_PROCESSES"]),
                                   int(os.environ["JAX_PROCESS_ID"]))
    elif cfg.train.distributed:
        jax.distributed.initialize()


def frozen_networks(cfg) -> tuple[FrozenNets, dict]:
    """The loss networks the config needs (loaded now, so a missing weights file fails
    before the first step, naming it) -> (static parts, weights)."""
    identity = vgg = None
    state = {"identity": None, "vgg": None}
    if cfg.train.stage in ("pretrain", "coarse") and cfg.loss.identity:
        from jaxface.losses import identity_network

        identity = identity_network(cfg.identity)
        state["identity"] = identity.state
    if cfg.train.stage == "detail" and cfg.loss.mrf:
        from jaxface.losses.nets.vgg19 import perceptual_network

        vgg, state["vgg"] = nnx.split(perceptual_network(cfg))
    return FrozenNets(identity, vgg), state


def _check_data(cfg, n_devices: int) -> list[pathlib.Path]:
    """The data folders of ``data.dir`` (one, or several comma-separated), checked before
    anything is built: each exists and has the train split."""
    if cfg.train.stage not in STAGES:
        raise ConfigError(f"train.stage must be one of {sorted(STAGES)}, got {cfg.train.stage!r}")
    if not cfg.data.dir:
        raise ConfigError("data.dir is not set: a dataset folder from `jaxface synth` or "
                          "`jaxface prepare` (several: comma-separated)")
    dirs = [pathlib.Path(d.strip()) for d in str(cfg.data.dir).split(",") if d.strip()]
    for data_dir in dirs:
        if not (data_dir / "dataset_info.json").is_file() and not is_tfds_folder(data_dir):
            raise FileNotFoundError(f"no dataset at data.dir={data_dir}: write one with "
                                    f"`jaxface synth --out {data_dir}` or `jaxface prepare`")
        splits = read_info(data_dir)["splits"]
        if "train" not in splits:
            raise ConfigError(f"{data_dir} has no train split (it has {sorted(splits)}); "
                              "write it again with at least one training identity")
    if cfg.data.identities_per_batch % n_devices:
        raise ConfigError(f"data.identities_per_batch={cfg.data.identities_per_batch} must be a "
                         f"multiple of the {n_devices} devices (whole identity groups each)")
    if cfg.loss.ground_truth and any(read_info(d).get("name") != "jaxface_synthetic"
                                     for d in dirs):
        raise ConfigError(f"loss.ground_truth > 0 needs ground-truth parameters: {cfg.data.dir}"
                          " is not all `jaxface synth` data")
    return dirs


def _initial_state(cfg, workdir, checkpoints, params, stats):
    """The resume order of the module docstring -> (state, how it started)."""
    state = init_state(params, stats, cfg, cfg.train.seed)
    if checkpoints.latest_step() is not None:
        state, position = checkpoints.restore(state)
        if position.get("seed", cfg.train.seed) != cfg.train.seed:
            raise ConfigError(f"{workdir} was trained with train.seed={position['seed']}; "
                             "resume with the same seed (data order) or use a new work dir")
        return state, f"resuming at step {int(state.step)}"
    if cfg.train.init_from:
        source = pathlib.Path(cfg.train.init_from)
        source_cfg = json.loads((source / "config.json").read_text())
        source_stage = source_cfg["train"]["stage"]
        restored = restore_state(source, abstract_state(params, stats, cfg, source_stage))
        return (state._replace(params=restored.params, batch_stats=restored.batch_stats),
                f"starting from {source} (step {int(restored.step)}, {source_stage} stage)")
    if cfg.train.stage == "detail":
        raise ConfigError("the detail stage starts from a trained E_c: set train.init_from to "
                         "the coarse run's work dir")
    return state, "starting from scratch"


def evaluate(eval_step, params, stats, dataset) -> dict[str, float]:
    """Mean per-image errors over one pass of the eval split."""
    totals, count = {}, 0
    for batch in dataset:
        out = jax.device_get(eval_step(params, stats, {k: jnp.asarray(v)
                                                        for k, v in batch.items()}))
        for k, v in out.items():
            totals[k] = totals.get(k, 0.0) + float(np.sum(v))
        count += len(next(iter(out.values())))
    return {k: v / count for k, v in totals.items()}


def train_and_evaluate(cfg, workdir: str | os.PathLike | None = None,
                       progress: bool = True) -> dict:
    """Runs (or resumes) ``cfg.train.stage`` to ``cfg.train.steps``; returns the last train
    metrics (and the last eval's, prefixed ``eval_``)."""
    from tqdm import tqdm

    initialize_distributed(cfg)
    workdir = pathlib.Path(workdir or cfg.train.workdir)
    mesh = data_mesh()
    data_dirs = _check_data(cfg, mesh.size)
    chief = jax.process_index() == 0
    workdir.mkdir(parents=True, exist_ok=True)
    if chief:
        (workdir / "config.json").write_text(cfg.to_json_best_effort(indent=2))
    backend = resolve_backend(cfg.render.backend)
    assets = load_assets(cfg)
    frozen, frozen_state = frozen_networks(cfg)
    net = build_network(cfg.model, assets.sizes, cfg.train.seed)
    if cfg.model.imagenet_weights:    # SPEC 8: E_c's and E_d's ResNet50 from ImageNet
        initialize_from_imagenet(net, cfg.model.imagenet_weights)
    net = sync_batch_norm(net, AXIS)
    graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
    checkpoints = Checkpoints(workdir, cfg.train.keep_checkpoints, cfg.train.best_metric,
                              clean=chief)
    state, how = _initial_state(cfg, workdir, checkpoints, params, stats)
    start = int(state.step)
    group_size = cfg.data.images_per_identity
    hosts = jax.process_count()
    print(f"jaxface train: {cfg.train.stage} stage, render backend {backend}, {mesh.size} "
          f"device(s) {[d.platform for d in mesh.devices.flat][:1]} on {hosts} host(s), "
          f"{how}; target step {cfg.train.steps}")
    state_mb = sum(x.nbytes for x in jax.tree.leaves(state)) / 2**20
    best_mb = sum(x.nbytes for x in jax.tree.leaves(best_variables(state))) / 2**20
    print(f"jaxface train: a checkpoint every {cfg.train.checkpoint_every} steps "
          f"(train.checkpoint_every), {state_mb:.0f} MB each, the last "
          f"{cfg.train.keep_checkpoints} kept + the best ({best_mb:.0f} MB): up to "
          f"{(state_mb * cfg.train.keep_checkpoints + best_mb) / 1024:.2f} GB; a kill loses the "
          "steps since the newest complete one (at most two intervals while a save is "
          "being written)")
    step_fn = make_train_step(graphdef, assets, cfg, group_size, mesh, frozen)
    eval_step = make_eval_step(graphdef, assets, cfg)
    preview = make_preview(graphdef, assets, cfg)
    dataset = grouped_batches(data_dirs, cfg.data.identities_per_batch // hosts, group_size,
                              cfg.train.seed, shard_index=jax.process_index(),
                              shard_count=hosts, weights=tuple(cfg.data.mix_weights))
    eval_data = eval_batches(data_dirs[0], cfg.data.identities_per_batch, group_size,
                             cfg.data.eval_split)
    batches = batch_iterator(dataset, start, cfg.data.workers)
    images_per_step = cfg.data.identities_per_batch * group_size
    log = MetricsLog(workdir, enabled=chief)
    stop = {"signal": None}

    def request_stop(signum, frame):
        # Stop at the next step boundary, with a checkpoint; a second Ctrl-C interrupts.
        stop["signal"] = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    last, last_eval, bad_in_a_row = {}, {}, 0
    pending = None   # (step, device metrics): read one step late, so dispatch runs ahead
    t_last = time.perf_counter()

    def position(step):
        return {"step": step, "seed": cfg.train.seed, "data_dir": str(cfg.data.dir),
                "identities_per_batch": cfg.data.identities_per_batch,
                "images_per_identity": group_size}

    # The preview rows: the eval split's first images, read once.
    preview_batch = None if eval_data is None else {
        k: jnp.asarray(v[:cfg.train.preview_images]) for k, v in eval_data[0].items()}

    def run_eval(done):
        nonlocal last_eval, t_last
        if eval_data is None:
            return
        last_eval = evaluate(eval_step, state.params, state.batch_stats, eval_data)
        log.scalars(done, last_eval, "eval")
        log.image(done, "preview", jax.device_get(preview(state.params, state.batch_stats,
                                                          preview_batch)), PREVIEW_COLUMNS)
        if checkpoints.best is not None and cfg.train.best_metric in last_eval:
            checkpoints.save_best(done, state, last_eval)
        print(f"jaxface train: eval at step {done}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in last_eval.items()))
        t_last = time.perf_counter()   # images/s counts training time only

    def drain():
        """Reads the pending step's metrics (blocking) and logs them."""
        nonlocal pending, last, bad_in_a_row, t_last
        if pending is None:
            return
        step_done, device_metrics = pending
        pending = None
        metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
        last = metrics
        if step_done % cfg.train.log_every == 0 or step_done == cfg.train.steps:
            now = time.perf_counter()
            rate = images_per_step * cfg.train.log_every / max(now - t_last, 1e-9)
            t_last = now
            log.scalars(step_done, metrics | {"images_per_second": rate})
            shown = {k: f"{metrics[k]:.4f}" for k in ("loss", "landmark", "pixel",
                                                      "detail_photometric") if k in metrics}
            bar.set_postfix(shown | {"img/s": f"{rate:.1f}"})
        if metrics["finite"] >= 1.0:
            bad_in_a_row = 0
            return
        bad_in_a_row += 1
        print(f"jaxface train: step {step_done}: loss {metrics['loss']}, grad norm "
              f"{metrics['grad_norm']}; update skipped ({bad_in_a_row} in a row)")
        if bad_in_a_row >= cfg.train.max_nonfinite_steps:
            raise NonFiniteLossError(
                f"{bad_in_a_row} steps in a row with a non-finite loss or gradient (last at "
                f"step {step_done}); the last checkpoint is kept (step "
                f"{checkpoints.latest_step()}); lower optim.lr or check the data")

    bar = tqdm(range(start, cfg.train.steps), initial=start, total=cfg.train.steps,
               desc=f"train ({cfg.train.stage})", disable=not (progress and chief))
    try:
        if start == 0:
            run_eval(0)
        for step in bar:
            batch = shard_batch(next(batches), mesh, train_keys(cfg))
            state, metrics = step_fn(state, batch, frozen_state)
            drain()
            pending = (step + 1, metrics)
            done = step + 1
            boundary = done % cfg.train.checkpoint_every == 0 or done == cfg.train.steps
            if boundary or stop["signal"] or done % cfg.train.eval_every == 0:
                drain()
            if done % cfg.train.eval_every == 0 or done == cfg.train.steps:
                run_eval(done)
            if boundary or stop["signal"]:
                waited = checkpoints.save(done, state, position(done))
                if waited > 1.0:
                    print(f"jaxface train: step {done}: waited {waited:.1f} s for the previous "
                          "checkpoint to be written (saves are slower than "
                          "train.checkpoint_every steps)")
            if stop["signal"]:
                print(f"jaxface train: stopped by {stop['signal']} after step {done} "
                      "(checkpoint saved)")
                break
        drain()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        bar.close()
        checkpoints.wait()
        checkpoints.close()
        log.close()
    return last | {f"eval_{k}": v for k, v in last_eval.items()} | {"step": int(state.step)}
