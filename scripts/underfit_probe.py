"""Is a run's landmark error a matter of fit or of generalisation, and of its BatchNorm
statistics? Evaluates a run's last checkpoint, as `jaxface train`'s eval does (inference
mode, DECA's test crop), on the held-out split with the run's running statistics, on the
same held-out split with *precise* statistics (the plain average of ``--batches`` training
batches' statistics, train-mode forward on DECA's training crops, instead of the running
average that lags the weights), and on training images. ``--crop-scales``: the held-out
split again framed at each of these test-crop scales (DECA's 1.375 lies below its training
crops' 1.4-1.8).

    python scripts/underfit_probe.py --run runs/learn_pretrain_base_big --batches 50
    python scripts/underfit_probe.py --run runs/learn_pretrain_base_big_cos --batches 1 \
        --crop-scales 1.375 1.6 1.8

Prints one table (docs/results.md, section 2).
"""

import argparse
import itertools
import pathlib

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.data.pipeline import batch_iterator, eval_batches, grouped_batches
from jaxface.export.model_dir import load_run
from jaxface.reconstruction.predict import predict_params
from jaxface.train.periodic import mean_errors
from jaxface.train.step import make_eval_step, prepare_batch, train_keys

METRICS = ("landmark_px", "mesh_sim_mm", "shape_sim_mm")


def with_batch_statistics(graphdef: nnx.GraphDef, params, batch_stats) -> nnx.GraphDef:
    """``graphdef`` with every BatchNorm's momentum 0: a train-mode forward then returns the
    batch's own statistics (mean, and variance as the layer records it) as the new state."""
    net = nnx.merge(graphdef, params, batch_stats)
    for _, module in nnx.iter_modules(net):
        if isinstance(module, nnx.BatchNorm):
            module.momentum = 0.0
    return nnx.split(net, nnx.Param, nnx.BatchStat)[0]


def precise_statistics(graphdef, params, batch_stats, batches, cfg, sizes, seed: int = 0):
    """The mean over ``batches`` (training batches, before framing) of each BatchNorm's batch
    statistics in a train-mode forward of the coarse encoder on DECA's random crops."""
    zero_momentum = with_batch_statistics(graphdef, params, batch_stats)

    @jax.jit
    def statistics(params, batch_stats, batch, key):
        framed = prepare_batch(batch, key, 0, cfg)
        return predict_params(zero_momentum, params, batch_stats, framed, cfg, sizes, True)[1]

    total, count = None, 0
    for i, batch in enumerate(batches):
        stats = statistics(params, batch_stats, {k: jnp.asarray(v) for k, v in batch.items()},
                           jax.random.key(seed + i))
        total = stats if total is None else jax.tree.map(jnp.add, total, stats)
        count += 1
    return jax.tree.map(lambda t: t / count, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=pathlib.Path, required=True)
    parser.add_argument("--batches", type=int, default=50,
                        help="training batches averaged into the precise statistics")
    parser.add_argument("--train-images", type=int, default=128,
                        help="training images evaluated (one per identity, in order)")
    parser.add_argument("--crop-scales", type=float, nargs="*", default=(),
                        help="also evaluate the held-out split framed at these test-crop "
                             "scales (x the landmarks' mean extent)")
    args = parser.parse_args()
    cfg, assets, graphdef, params, stats, step, _ = load_run(args.run, "last")
    data = str(cfg.data.dir).split(",")[0]
    eval_step = make_eval_step(graphdef, assets, cfg)
    ids, k = cfg.data.identities_per_batch, cfg.data.images_per_identity

    def on_held_out(eval_step, stats):
        return mean_errors(eval_step, params, stats, batch_iterator(eval_batches(data, ids, k)))

    held_out = on_held_out(eval_step, stats)
    train, keys = batch_iterator(grouped_batches([data], ids, k, seed=123)), train_keys(cfg)
    first = [next(train) for _ in range(args.batches)]
    first = [{key: batch[key] for key in keys} for batch in first]
    precise = precise_statistics(graphdef, params, stats, first, cfg, assets.sizes)
    held_out_precise = on_held_out(eval_step, precise)
    on_train = mean_errors(eval_step, params, stats, itertools.islice(
        batch_iterator(eval_batches(data, args.train_images, 1, "train")), 1))
    print(f"{args.run} (step {step}), evaluated in inference mode on DECA's test crop")
    print("| images | BatchNorm statistics | " + " | ".join(METRICS) + " |")
    print("|---|---|" + "---:|" * len(METRICS))
    for name, how, row in (("held-out", "the run's running average", held_out),
                           ("held-out", f"precise ({args.batches} training batches)",
                            held_out_precise),
                           (f"training ({args.train_images}, one per identity)",
                            "the run's running average", on_train)):
        print(f"| {name} | {how} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")
    if args.crop_scales:
        print("\n| held-out, test crop scale | " + " | ".join(METRICS) + " |")
        print("|---|" + "---:|" * len(METRICS))
        for scale in args.crop_scales:
            cfg.data.crop_scale = scale
            row = on_held_out(make_eval_step(graphdef, assets, cfg), stats)
            print(f"| {scale:g} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")


if __name__ == "__main__":
    main()
