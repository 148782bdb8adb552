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
import time

import jax
from flax import nnx

from jaxface.configs import ConfigError
from jaxface.data.pipeline import batch_iterator, eval_batches, grouped_batches
from jaxface.data.records import is_tfds_folder, read_info
from jaxface.models import build_network
from jaxface.models.network import sync_batch_norm
from jaxface.models.torchvision import initialize_from_imagenet
from jaxface.reconstruction.assets import load_assets
from jaxface.render.backend import resolve_backend
from jaxface.train.checkpoint import (
    Checkpoints,
    best_variables,
    has_complete_checkpoint,
    restore_state,
)
from jaxface.train.metrics_log import MetricsLog
from jaxface.train.periodic import Evaluation, StepMetrics, StopOnSignal
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
    replicate,
    shard_batch,
    train_keys,
    with_optimiser_of,
)


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


def _check_same_optimiser(cfg, workdir: pathlib.Path) -> None:
    """A run resumes with the optimiser it was saved with (its state's structure). A work dir
    without a finished checkpoint (killed before its first save) restores nothing: any
    optimiser may start there."""
    saved = workdir / "config.json"
    if not saved.is_file() or not has_complete_checkpoint(workdir / "checkpoints"):
        return
    before = with_optimiser_of(cfg, json.loads(saved.read_text())["optim"]).optim
    for field in ("name", "schedule"):
        if before[field] != cfg.optim[field]:
            raise ConfigError(f"{workdir} was trained with optim.{field}={before[field]!r}; "
                              "resume with the same or use a new work dir")


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
        restored = restore_state(source, abstract_state(
            params, stats, with_optimiser_of(cfg, source_cfg["optim"]), source_stage))
        return (state._replace(params=restored.params, batch_stats=restored.batch_stats),
                f"starting from {source} (step {int(restored.step)}, {source_stage} stage)")
    if cfg.train.stage == "detail":
        raise ConfigError("the detail stage starts from a trained E_c: set train.init_from to "
                         "the coarse run's work dir")
    return state, "starting from scratch"


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
    _check_same_optimiser(cfg, workdir)
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
    state = replicate(state, mesh)
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
    dataset = grouped_batches(data_dirs, cfg.data.identities_per_batch // hosts, group_size,
                              cfg.train.seed, shard_index=jax.process_index(),
                              shard_count=hosts, weights=tuple(cfg.data.mix_weights))
    eval_data = eval_batches(data_dirs[0], cfg.data.identities_per_batch, group_size,
                             cfg.data.eval_split)
    batches = batch_iterator(dataset, start, cfg.data.workers)
    log = MetricsLog(workdir, enabled=chief)
    evaluation = Evaluation(make_eval_step(graphdef, assets, cfg),
                            make_preview(graphdef, assets, cfg), eval_data, log, checkpoints,
                            cfg.train.best_metric, PREVIEW_COLUMNS, cfg.train.preview_images)
    desc = f"train ({cfg.train.stage})"
    bar = tqdm(initial=start, total=cfg.train.steps, desc=f"{desc}: compiling",
               disable=not (progress and chief))
    metrics = StepMetrics(log, cfg.train.log_every, cfg.train.steps,
                          cfg.data.identities_per_batch * group_size,
                          cfg.train.max_nonfinite_steps, checkpoints.latest_step,
                          on_log=bar.set_postfix)
    try:
        with StopOnSignal() as stop:
            if start == 0:
                evaluation(0, state)
            for step in range(start, cfg.train.steps):
                batch = shard_batch(next(batches), mesh, train_keys(cfg))
                started = time.perf_counter()
                state, device_metrics = step_fn(state, batch, frozen_state)
                done = step + 1
                if step == start:
                    after_compiling(bar, device_metrics, done, desc, started)
                    metrics.restart_clock()
                else:
                    bar.update(1)
                metrics.push(done, device_metrics)
                eval_now = done % cfg.train.eval_every == 0 or done == cfg.train.steps
                save_now = (done % cfg.train.checkpoint_every == 0 or done == cfg.train.steps
                            or stop.signal)
                if eval_now or save_now:
                    metrics.drain()
                if eval_now:
                    evaluation(done, state)
                    metrics.restart_clock()    # images/s counts training time only
                if save_now:
                    _save(checkpoints, done, state, cfg)
                if stop.signal:
                    print(f"jaxface train: stopped by {stop.signal} after step {done} "
                          "(checkpoint saved)")
                    break
            metrics.drain()
    finally:
        bar.close()
        checkpoints.wait()
        checkpoints.close()
        log.close()
    return (metrics.last | {f"eval_{k}": v for k, v in evaluation.last.items()}
            | {"step": int(state.step)})


def after_compiling(bar, device_metrics, done: int, desc: str, started: float) -> None:
    """The run's first step has finished (compiling it, minutes on a CPU unless the
    compilation cache has it, is most of its time): the bar's clock, rate and ETA start
    from here, so they describe the steps after it, and the compile time is printed."""
    jax.block_until_ready(device_metrics)
    seconds = time.perf_counter() - started
    bar.reset(bar.total)
    bar.n = bar.initial = bar.last_print_n = done
    bar.set_description_str(desc)
    bar.write(f"jaxface train: the first step took {seconds:.1f} s (most of it compiling; a "
              "rerun reads the compiled step from the cache)")


def data_position(cfg, step: int) -> dict:
    """What a checkpoint records besides the state: where the data pipeline resumes."""
    return {"step": step, "seed": cfg.train.seed, "data_dir": str(cfg.data.dir),
            "identities_per_batch": cfg.data.identities_per_batch,
            "images_per_identity": cfg.data.images_per_identity}


def _save(checkpoints: Checkpoints, step: int, state, cfg) -> None:
    waited = checkpoints.save(step, state, data_position(cfg, step))
    if waited > 1.0:
        print(f"jaxface train: step {step}: waited {waited:.1f} s for the previous checkpoint "
              "to be written (saves are slower than train.checkpoint_every steps)")
