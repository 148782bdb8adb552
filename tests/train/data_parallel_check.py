"""Run by tests/train/test_step.py in a subprocess with 4 host devices: one data-parallel
train step (shard_map over 4 devices, a global batch of 4 identities x 2 images) against the
same step on one device with the same global batch. Exits non-zero on a mismatch.

In float64 (parameters, batch and face model): the two programs sum in different orders, and
in float32 that rounding, amplified through ~50 BatchNorm'd layers (whose variances come
from E[x^2] - E[x]^2), reaches ~1e-4 of the loss — which would hide a real mismatch. In
float64 the rounding is ~1e-12, so agreement to 1e-8 shows the data-parallel step computes
the single-device step.
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from jaxface import flame  # noqa: E402
from jaxface.configs import load_config  # noqa: E402
from jaxface.data.pipeline import grouped_batches  # noqa: E402
from jaxface.data.synthetic import SynthSettings, generate  # noqa: E402
from jaxface.models import build_network  # noqa: E402
from jaxface.models.network import sync_batch_norm  # noqa: E402
from jaxface.reconstruction.assets import load_assets  # noqa: E402
from jaxface.train.step import (  # noqa: E402
    AXIS,
    data_mesh,
    init_state,
    make_train_step,
    shard_batch,
)


def to_float64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64)
                        if np.issubdtype(np.asarray(x).dtype, np.floating) else x, tree)


def main(tmp: str) -> int:
    assert len(jax.devices()) == 4, jax.devices()
    root = __file__.rsplit("/tests/", 1)[0]
    # Augmentation on: each image's jitter comes from its global index, not its device.
    cfg = load_config([f"--config={root}/configs/synthetic.py", "--config.model.use_grpam=False",
                       "--config.model.image_size=64", "--config.data.augment=True",
                       "--config.data.images_per_identity=2"])
    generate(tmp, identities=4, per_identity=2, seed=1, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64))
    batch = to_float64(grouped_batches(tmp, 4, 2, seed=0)[0])
    assets = load_assets(cfg)
    assets = assets._replace(model=flame.with_dtype(assets.model, jnp.float64),
                             albedo=to_float64(assets.albedo))
    net = sync_batch_norm(build_network(cfg.model, assets.sizes), AXIS)
    graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
    params, stats = to_float64(params), to_float64(stats)
    # Adam's first step moves every parameter by about lr * sign(gradient), so gradient
    # components at rounding level can flip sign between two reduction orders; plain SGD
    # with lr = 1 makes the parameter change the gradient itself: compared to 1e-8 of the
    # largest gradient.
    ok = True
    for optimiser, lr in (("sgd", 1.0), ("adam", cfg.optim.lr)):
        cfg.optim.name, cfg.optim.lr = optimiser, lr
        results = []
        for devices in (jax.devices()[:1], jax.devices()):
            mesh = data_mesh(devices)
            step = make_train_step(graphdef, assets, cfg, 2, mesh)
            state = init_state(jax.tree.map(np.array, params), jax.tree.map(np.array, stats),
                               cfg)
            assert jax.tree.leaves(state.params)[0].dtype == np.float64
            state, metrics = step(state, shard_batch(batch, mesh), None)
            results.append(jax.device_get((state, metrics)))
        (one, m1), (four, m4) = results
        def max_relative(tree_a, tree_b):
            """max |a - b| / max(1, |a|) over all leaves (reduction-order noise)."""
            return max(float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a))))
                       for a, b in zip(jax.tree.leaves(tree_a), jax.tree.leaves(tree_b),
                                       strict=True))

        start = jax.tree.leaves(params)
        grads = [np.asarray(p0) - p1 for p0, p1 in zip(start, jax.tree.leaves(one.params),
                                                        strict=True)]
        scale = max(1.0, max(float(np.max(np.abs(g))) for g in grads))
        diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(
            jax.tree.leaves(one.params), jax.tree.leaves(four.params), strict=True)])
        stat_diff = max_relative(one.batch_stats, four.batch_stats)
        metric_diff = max_relative(m1, m4)
        over = float(np.mean(diffs > 1e-5))
        print(f"{optimiser}: max param difference {diffs.max():.3g} ({100 * over:.4f}% of "
              f"parameters over 1e-5; largest update {scale:.3g}), relative batch-stat "
              f"difference {stat_diff:.3g}, relative metric difference {metric_diff:.3g} "
              f"(loss {float(m1['loss']):.6f})")
        if optimiser == "sgd":   # the update is the gradient: equal to 1e-8 of its scale
            ok &= diffs.max() < 1e-8 * scale
        else:                    # lr * sign(g): only sign flips of rounding-level g differ
            ok &= over < 1e-5 and diffs.max() <= 2 * lr
        ok &= stat_diff < 1e-8 and metric_diff < 1e-8
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
