"""Compile time and program size of the coarse train step with the face assets closed over
(constants baked into the program, as before) vs passed as arguments (as the steps do now).

    python benchmarks/closed_over_assets.py [--albedo-size 512] [--albedo-components 50]

The network is configs/synthetic.py's at 64 px without GRPAM (what is compiled besides the
assets does not change the comparison). The albedo space is replaced by a random one of
``--albedo-size``² x 3 x ``--albedo-components`` values: 512 x 50 is the shape DECA uses of
the BFM albedo (~157 MB of float32), which the synthetic head's 256² x 20 (~16 MB) is not.
Each variant is lowered and compiled once (the persistent cache off), the argument variant
first; the table gives the seconds, the compiled program's argument bytes
(``memory_analysis``; a closed-over array is not an argument but a constant of the program)
and the growth of the process's peak RSS, with the ratio of compile times.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxface.configs import load_config
from jaxface.data.pipeline import grouped_batches
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.flame import AlbedoModel
from jaxface.models import build_network
from jaxface.models.network import sync_batch_norm
from jaxface.reconstruction.assets import load_assets
from jaxface.train.step import AXIS, data_mesh, init_state, shard_batch, train_step_function

CONFIG = pathlib.Path(__file__).parents[1] / "configs" / "synthetic.py"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compile_variant(fn, args) -> dict:
    rss = peak_rss_mb()
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    mem = compiled.memory_analysis()
    return {"seconds": seconds,
            "arguments_mb": (mem.argument_size_in_bytes if mem is not None else 0) / 2**20,
            "peak_rss_growth_mb": peak_rss_mb() - rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--albedo-size", type=int, default=512)
    parser.add_argument("--albedo-components", type=int, default=50)
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)

    cfg = load_config([f"--config={CONFIG}", "--config.model.use_grpam=False",
                       "--config.model.image_size=64", "--config.data.augment=False"])
    assets = load_assets(cfg)
    rng = np.random.default_rng(0)
    s, k = args.albedo_size, args.albedo_components
    albedo = AlbedoModel(jnp.asarray(rng.uniform(size=(s, s, 3)), jnp.float32),
                         jnp.asarray(rng.normal(size=(s, s, 3, k)) * 0.01, jnp.float32))
    assets = assets._replace(albedo=albedo, group_sizes=tuple(
        (g, k if g == "tex" else n) for g, n in assets.group_sizes))
    cfg.face_model.n_albedo = k
    net = sync_batch_norm(build_network(cfg.model, assets.sizes), AXIS)
    graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
    data = pathlib.Path("/tmp/jaxface_bench_synth")
    if not data.exists():
        generate(data, identities=2, per_identity=2, seed=0, progress=False,
                 settings=SynthSettings(image_size=64, uv_size=64, occluder_prob=0.0))
    mesh = data_mesh(jax.devices()[:1])
    batch = shard_batch(grouped_batches(data, 2, 2, seed=0)[0], mesh)
    state = init_state(params, stats, cfg)
    step = train_step_function(graphdef, cfg, 2, mesh)

    passed = compile_variant(step, (state, batch, None, assets))
    closed = compile_variant(lambda st, b, f: step(st, b, f, assets), (state, batch, None))
    print(f"coarse train step, 64 px, albedo {s}² x 3 x {k} "
          f"({albedo.basis.nbytes / 2**20:.0f} MB); {platform.processor() or platform.machine()}"
          f", jax {jax.__version__}")
    print(f"{'assets':<12}{'compile s':>10}{'args MB':>9}{'peak RSS +MB':>14}"
          f"{'compile ratio':>15}")
    for name, row in (("arguments", passed), ("closed over", closed)):
        print(f"{name:<12}{row['seconds']:>10.1f}"
              f"{row['arguments_mb']:>9.1f}{row['peak_rss_growth_mb']:>14.0f}"
              f"{row['seconds'] / passed['seconds']:>15.2f}")


if __name__ == "__main__":
    main()
