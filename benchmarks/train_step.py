"""Training speed: images/s of the full coarse and detail steps, and where the time goes.

    python benchmarks/train_step.py [--sizes 128 224] [--identities 2] [--repeats 3]
    python benchmarks/train_step.py --backends jax nvdiffrast   # the coarse step per backend

For each input size (128: the synthetic config; 224: the paper's) and stage, the jit-compiled
train step (E_c or E_d/F_d forward+backward, FLAME, rendering, every loss of the config
without the networks that need downloaded weights, Adam) is timed on a batch of synthetic
faces (identities x 2 images), and against a bare ResNet50 (DECA's encoder: no GRPAM, no
PIM, RGB input, stride 2 in stage 4) forward+backward on the same batch in the same process
(issue 20, item 4: the coarse step at >= 0.5x its images/s). The coarse step's time is split
by timing its parts alone,
each forward+backward and jit-compiled: the encoder (E_c), rendering (FLAME + the renderer,
twice as the step does with L_sc) and the losses on given renders. The reference for the
ratios is the coarse step at the same size, in the same process. With ``--backends``, the
coarse step is timed again with each further render backend (``render.backend``), its ratio
against the first backend's coarse step.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import tempfile

import jax
import jax.numpy as jnp
from flax import nnx
from timing import median_seconds

from jaxface.configs import load_config
from jaxface.data.pipeline import grouped_batches
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.losses import coarse_loss
from jaxface.models import apply, build_network, network_input
from jaxface.models.network import sync_batch_norm
from jaxface.reconstruction.assets import load_assets
from jaxface.reconstruction.predict import coarse_geometry, predict_params, render_geometry
from jaxface.render.backend import resolve_backend
from jaxface.train.step import (
    AXIS,
    data_mesh,
    init_state,
    make_train_step,
    shard_batch,
)

CONFIG = pathlib.Path(__file__).parents[1] / "configs" / "synthetic.py"


def setup(size: int, identities: int, stage: str, backend: str = "auto"):
    cfg = load_config([f"--config={CONFIG}", f"--config.model.image_size={size}",
                       f"--config.train.stage={stage}", f"--config.render.backend={backend}",
                       f"--config.data.identities_per_batch={identities}"])
    data = tempfile.mkdtemp(prefix="jaxface-bench-")
    generate(data, identities, 2, progress=False,
             settings=SynthSettings(image_size=size, uv_size=cfg.model.uv_size))
    batch = grouped_batches(data, identities, 2, seed=0)[0]
    assets = load_assets(cfg)
    net = sync_batch_norm(build_network(cfg.model, assets.sizes), AXIS)
    graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
    return cfg, batch, assets, graphdef, params, stats


def time_step(cfg, batch, assets, graphdef, params, stats, repeats: int) -> float:
    mesh = data_mesh(jax.devices()[:1])
    step = make_train_step(graphdef, assets, cfg, 2, mesh)
    sharded = shard_batch(batch, mesh)
    # The step donates its state: start from copies, the parts timing reuses the originals.
    box = {"state": init_state(jax.tree.map(jnp.copy, params), jax.tree.map(jnp.copy, stats),
                               cfg)}

    def run():
        box["state"], metrics = step(box["state"], sharded, None)
        return metrics

    return median_seconds(run, repeats)


def encoder_backward(graphdef, x):
    """-> jit ``f(params, stats)``: E_c's forward+backward (train-mode BatchNorm) on ``x``."""
    @jax.jit
    def encoder(params, stats):
        def f(params, stats):
            code, new = apply(graphdef, params, stats, "encode_coarse", x, train=True)
            return jnp.mean(code ** 2), new
        return jax.grad(f, argnums=(0, 1), has_aux=True)(params, stats)
    return encoder


def time_parts(cfg, batch, assets, graphdef, params, stats, repeats: int) -> dict[str, float]:
    b = {k: jnp.asarray(batch[k]) for k in ("image", "landmarks", "mask")}
    x = network_input(b["image"], b["landmarks"], b["mask"], cfg.model.use_priors,
                      cfg.model.landmark_channels, cfg.model.landmark_sigma)
    # The encoder alone runs outside the data mesh: plain BatchNorm (same arithmetic).
    plain_graphdef = nnx.graphdef(build_network(cfg.model, assets.sizes))
    encoder = encoder_backward(plain_graphdef, x)

    p, _ = predict_params(plain_graphdef, params, stats, b, cfg, assets.sizes, False)

    @jax.jit
    def rendering(p):
        def f(p):
            total = 0.0
            for _ in range(2):   # the render and the L_sc re-render
                geo = coarse_geometry(p, assets, cfg)
                total = total + jnp.mean(render_geometry(geo, b["image"], assets, cfg).image)
            return total
        return jax.grad(f)(p)

    geo = coarse_geometry(p, assets, cfg)
    rendered = render_geometry(geo, b["image"], assets, cfg).image
    size = cfg.model.image_size

    @jax.jit
    def losses(rendered, landmarks, p):
        def f(rendered, landmarks, p):
            total = 0.0
            for _ in range(2):
                total = total + coarse_loss(cfg.loss, b["image"], rendered, b["mask"],
                                            landmarks / size, b["landmarks"] / size, p)[0]
            return total
        return jax.grad(f, argnums=(0, 1, 2))(rendered, landmarks, p)

    return {"encoder": median_seconds(lambda: encoder(params, stats), repeats),
            "rendering": median_seconds(lambda: rendering(p), repeats),
            "losses": median_seconds(lambda: losses(rendered, geo["landmarks"], p), repeats)}


def time_bare_resnet(size: int, batch, repeats: int) -> float:
    """Seconds of a bare ResNet50's forward+backward (train-mode BatchNorm) on ``batch``."""
    cfg = load_config([f"--config={CONFIG}", f"--config.model.image_size={size}",
                       "--config.model.use_grpam=False", "--config.model.use_priors=False",
                       "--config.model.last_stride=2"])
    assets = load_assets(cfg)
    graphdef, params, stats = nnx.split(build_network(cfg.model, assets.sizes), nnx.Param,
                                        nnx.BatchStat)
    encoder = encoder_backward(graphdef, jnp.asarray(batch["image"]))
    return median_seconds(lambda: encoder(params, stats), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--identities", type=int, default=2, help="x 2 images per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["auto"],
                        choices=["auto", "jax", "nvdiffrast"])
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"jax {jax.__version__}, render backend {resolve_backend('auto')}")
    n = 2 * args.identities
    print("| size | batch | backend | stage | step (s) | images/s | vs coarse step | encoder "
          "| rendering | losses | vs bare ResNet50 fwd+bwd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    first = args.backends[0]
    for size in args.sizes:
        parts, reference = None, None
        runs = [(first, "coarse"), (first, "detail")] + [(b, "coarse") for b in args.backends[1:]]
        for backend, stage in runs:
            pieces = setup(size, args.identities, stage, backend)
            seconds = time_step(*pieces, args.repeats)
            if reference is None:
                reference = seconds
                parts = time_parts(*pieces, args.repeats)
                share = {k: f"{v * 1000:.0f} ms ({100 * v / seconds:.0f}%)"
                         for k, v in parts.items()}
                bare = time_bare_resnet(size, pieces[1], args.repeats)
                versus = f"{bare / seconds:.2f} (bare: {n / bare:.1f} img/s)"
            else:
                share, versus = {k: "" for k in parts}, ""
            print(f"| {size} | {n} | {resolve_backend(backend)} | {stage} | {seconds:.3f} | "
                  f"{n / seconds:.1f} | "
                  f"{reference / seconds:.2f} | {share['encoder']} | {share['rendering']} | "
                  f"{share['losses']} | {versus} |", flush=True)


if __name__ == "__main__":
    main()
