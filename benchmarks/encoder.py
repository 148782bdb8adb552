"""Coarse encoder speed: the full model (PIM + GRPAM) and the paper's network ablations.

    python benchmarks/encoder.py [--size 224] [--batch 4] [--repeats 3]

For each PIM x GRPAM setting, E_c (ResNet50 with or without RGA + FPN, with or without the
prior channels) is built at the given size and timed jit-compiled (medians after warm-up):
forward in eval mode, and forward+backward in train mode (gradient of a loss on the code
w.r.t. the parameters, BatchNorm statistics updated). The reference is the plain ResNet50
(DECA's encoder, both switches off) in the same process; the ratio is its time over each
variant's (< 1: slower than the reference).
"""

from __future__ import annotations

import argparse
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from timing import median_seconds

from jaxface.configs import load_config
from jaxface.models import CoarseEncoder, param_sizes, prior_channels


def time_variant(cfg, use_priors, use_grpam, batch, repeats):
    channels = 3 + prior_channels(use_priors, cfg.landmark_channels)
    encoder = CoarseEncoder(channels, sum(param_sizes().values()), cfg.image_size,
                            use_grpam=use_grpam, last_stride=cfg.last_stride,
                            fpn_width=cfg.fpn_width, rngs=nnx.Rngs(0))
    graphdef, params, stats = nnx.split(encoder, nnx.Param, nnx.BatchStat)
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(batch, cfg.image_size,
                                                           cfg.image_size, channels)),
                    jnp.float32)

    @jax.jit
    def forward(p, s, x):
        return nnx.view(nnx.merge(graphdef, p, s), use_running_average=True)(x)

    @jax.jit
    def forward_backward(p, s, x):
        def loss(p, s):
            net = nnx.merge(graphdef, p, s)
            return jnp.mean(net(x) ** 2), nnx.state(net, nnx.BatchStat)
        return jax.grad(loss, argnums=(0, 1), has_aux=True)(p, s)

    tf = median_seconds(lambda: forward(params, stats, x), repeats)
    tb = median_seconds(lambda: forward_backward(params, stats, x), repeats)
    return tf, tb


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_config(["--config=configs/model.py", f"--config.image_size={args.size}"])
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; E_c at {args.size}x{args.size}, B = {args.batch}")
    print(f"{'PIM':<5}{'GRPAM':<7}{'fwd img/s':>10}{'fwd+bwd img/s':>15}{'fwd ratio':>11}"
          f"{'fwd+bwd ratio':>15}")
    reference = None
    for use_priors, use_grpam in ((False, False), (True, False), (False, True), (True, True)):
        tf, tb = time_variant(cfg, use_priors, use_grpam, args.batch, args.repeats)
        reference = reference or (tf, tb)
        print(f"{'on' if use_priors else 'off':<5}{'on' if use_grpam else 'off':<7}"
              f"{args.batch / tf:>10.2f}{args.batch / tb:>15.2f}{reference[0] / tf:>11.2f}"
              f"{reference[1] / tb:>15.2f}", flush=True)


if __name__ == "__main__":
    main()
