"""Coarse loss speed: the full L_coarse (with the identity network) forward+backward.

    python benchmarks/losses.py [--batch 8] [--size 224] [--repeats 5]

Times, jit-compiled (medians after warm-up), the gradient of the coarse loss w.r.t. the
rendered image, the predicted landmarks and the parameters, at the default weights of
configs/losses.py, with the identity term computed by (a) dlib's face network (the default
backend; its packaged weights) and (b) the VGGFace2 ResNet50 architecture (random weights:
the cost is the architecture's). The reference in the same process is the same loss without
the identity term; the ratio is reference time / time.
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
from jaxface.losses import IdentityNetwork, coarse_loss, identity_network
from jaxface.losses.nets.vggface2 import vggface2_resnet50


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(["--config=configs/losses.py"])
    rng = np.random.default_rng(0)
    b, s = args.batch, args.size
    image = jnp.asarray(rng.uniform(size=(b, s, s, 3)), jnp.float32)
    rendered = jnp.asarray(rng.uniform(size=(b, s, s, 3)), jnp.float32)
    mask = jnp.asarray(rng.uniform(size=(b, s, s, 1)) > 0.3, jnp.float32)
    lmk_t = jnp.asarray(rng.normal(size=(b, 68, 2)), jnp.float32)
    lmk_p = jnp.asarray(rng.normal(size=(b, 68, 2)), jnp.float32)
    params = {k: jnp.asarray(rng.normal(size=(b, n)), jnp.float32)
              for k, n in (("shape", 100), ("exp", 50), ("tex", 50))}
    vgg = nnx.view(vggface2_resnet50(rngs=nnx.Rngs(0)), use_running_average=True)
    networks = {"dlib": identity_network(cfg.identity),
                "vggface2 (arch.)": IdentityNetwork("vggface2", *nnx.split(vgg))}

    def timed(net):
        loss_cfg = cfg.loss.copy_and_resolve_references()
        if net is None:
            with loss_cfg.unlocked():
                loss_cfg.identity = 0.0

        @jax.jit
        def grad(state, rendered, lmk_p, params):
            def loss(rendered, lmk_p, params):
                ids = {}
                if net is not None:
                    ids = {"identity_image": jax.lax.stop_gradient(net.apply(state, image)),
                           "identity_rendered": net.apply(state, rendered)}
                return coarse_loss(loss_cfg, image, rendered, mask, lmk_p, lmk_t, params,
                                   **ids)[0]
            return jax.grad(loss, argnums=(0, 1, 2))(rendered, lmk_p, params)

        state = None if net is None else net.state
        return median_seconds(lambda: grad(state, rendered, lmk_p, params), args.repeats)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; B = {b}, {s}x{s}")
    reference = timed(None)
    print(f"{'identity network':<18}{'fwd+bwd ms':>12}{'ms/img':>9}{'ratio':>8}")
    print(f"{'none (reference)':<18}{reference * 1e3:>12.1f}{reference / b * 1e3:>9.2f}"
          f"{1.0:>8.2f}", flush=True)
    for name, net in networks.items():
        t = timed(net)
        print(f"{name:<18}{t * 1e3:>12.1f}{t / b * 1e3:>9.2f}{reference / t:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
