"""Rasterizer speed: the render backends (pure JAX, nvdiffrast's kernels over XLA FFI,
nvdiffrast's own torch ops) and a brute-force rasterizer, FLAME-sized meshes.

    python benchmarks/rasterize.py [--sizes 224 512] [--batches 1 8 32] [--repeats 5]
    python benchmarks/rasterize.py --backends jax nvdiffrast torch --batches 1 8 64   # on GPU

The mesh is the synthetic head (9976 triangles) posed with random shapes and yaws and scaled
to fill most of the image (orthographic clip space, as the face renderer uses). Timed, jit
compiled, medians after warm-up:

- forward: ``rasterize`` + ``interpolate`` of per-vertex colours + ``antialias`` of the
  colour image (what a renderer does per frame; the shared-edge table is built once, outside);
- forward+backward: the gradient of a loss on the antialiased image w.r.t. the positions and
  the colours (barycentric and silhouette gradients both flow).

With ``--backends jax`` (the default) the reference is a brute-force rasterizer (every
triangle against every pixel, chunked), timed at B = 1 in the same process; the ratio is
reference time x B / JAX time (> 1: JAX faster). With several backends, each row gives every
backend's times and the ratios to the first backend's (``torch``: nvdiffrast's torch ops with
``RasterizeCudaContext``, the same three primitives, timed with CUDA synchronisation).
"""

from __future__ import annotations

import argparse
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from timing import median_seconds

from jaxface import flame
from jaxface.render import antialias, antialias_topology, interpolate, rasterize
from jaxface.render.visibility import coverage_depth, pixel_centres, triangle_planes


def brute_force_ids(pos_Vx4, faces, height, width, chunk=256):
    """Nearest covering triangle per pixel, every triangle against every pixel."""
    planes = triangle_planes(pos_Vx4[faces])
    n = planes.shape[0]
    pad = (-n) % chunk
    planes = jnp.concatenate([planes, jnp.zeros((pad, 5, 3), planes.dtype)])
    px, py = pixel_centres(height, width)

    def step(carry, k):
        best_z, best_id = carry
        cov, z = coverage_depth(jax.lax.dynamic_slice_in_dim(planes, k * chunk, chunk),
                                px[None], py[None])
        ids = k * chunk + jnp.arange(chunk)
        z = jnp.where(cov & (ids < n)[:, None], z, jnp.inf)
        arg = jnp.argmin(z, axis=0)
        cz = jnp.min(z, axis=0)
        better = cz < best_z
        return (jnp.where(better, cz, best_z), jnp.where(better, ids[arg], best_id)), None

    init = (jnp.full(px.shape, jnp.inf), jnp.full(px.shape, n))
    (_, ids), _ = jax.lax.scan(step, init, jnp.arange((n + pad) // chunk))
    return ids.reshape(height, width)


def clip_positions(model, batch, rng):
    shape = jnp.asarray(rng.normal(size=(batch, model.n_shape)), jnp.float32)
    pose = jnp.zeros((batch, 15)).at[:, 1].set(jnp.asarray(rng.uniform(-0.6, 0.6, batch)))
    v = flame.forward(model, shape, jnp.zeros((batch, model.n_expression)), pose).vertices
    v = 7.0 * (v - jnp.array([0.0, -0.02, 0.0]))
    return jnp.concatenate([v[..., :2], -0.5 * v[..., 2:3], jnp.ones_like(v[..., :1])], -1)


def jax_pipeline(model, topology, res, backend):
    """(forward, forward+backward) of rasterize -> interpolate -> antialias, jit-compiled."""
    def fwd(p, c):
        rast, _ = rasterize(p, model.faces, res, backend=backend)
        image = interpolate(c, rast, model.faces, backend=backend)[0]
        return antialias(image, rast, p, model.faces, topology, backend=backend)

    loss = jax.value_and_grad(lambda p, c: jnp.sum(fwd(p, c) ** 2), (0, 1))
    return jax.jit(fwd), jax.jit(loss)


def torch_pipeline(model, res):
    """The same with nvdiffrast's torch ops (CUDA rasterizer), on torch CUDA tensors."""
    import nvdiffrast.torch as dr
    import torch

    context = dr.RasterizeCudaContext()
    tri = torch.as_tensor(np.asarray(model.faces, np.int32)).cuda()

    def fwd(p, c):
        rast, _ = dr.rasterize(context, p, tri, res)
        image = dr.interpolate(c, rast, tri)[0]
        return dr.antialias(image.contiguous(), rast, p, tri)

    def loss(p, c):
        p, c = p.detach().requires_grad_(True), c.detach().requires_grad_(True)
        value = torch.sum(fwd(p, c) ** 2)
        value.backward()
        return value, p.grad, c.grad

    def timed(fn):
        def run(p, c):
            out = fn(p, c)
            torch.cuda.synchronize()
            return out
        return run

    def convert(p, c):
        return (torch.as_tensor(np.asarray(p)).cuda().contiguous(),
                torch.as_tensor(np.asarray(c)).cuda().contiguous())

    return timed(fwd), timed(loss), convert


def compare_backends(args, model, topology, rng):
    if "torch" in args.backends:
        try:
            torch_pipeline(model, (8, 8))
        except Exception as e:  # nvdiffrast 0.3.3's JIT plugin build fails on torch >= 2.9
            print(f"nvdiffrast-torch left out: {type(e).__name__}: {e}")
            args.backends = [b for b in args.backends if b != "torch"]
    print(f"{'size':>5} {'B':>3} " + " ".join(f"{b + ' fwd ms':>16} {b + ' f+b ms':>16}"
                                             for b in args.backends)
          + "".join(f" {b + '/' + args.backends[0] + ' f,f+b':>24}" for b in args.backends[1:]))
    for size in args.sizes:
        res = (size, size)
        for b in args.batches:
            pos = clip_positions(model, b, rng)
            colors = jnp.asarray(rng.uniform(size=(b, pos.shape[1], 3)), jnp.float32)
            times = []
            for backend in args.backends:
                if backend == "torch":
                    fwd, loss, convert = torch_pipeline(model, res)
                    p, c = convert(pos, colors)
                else:
                    fwd, loss = jax_pipeline(model, topology, res, backend)
                    p, c = pos, colors
                times.append((median_seconds(lambda f=fwd, p=p, c=c: f(p, c), args.repeats),
                              median_seconds(lambda f=loss, p=p, c=c: f(p, c), args.repeats)))
            ratios = "".join(f" {t[0] / times[0][0]:>11.2f},{t[1] / times[0][1]:>11.2f}"
                             for t in times[1:])
            print(f"{size:>5} {b:>3} " + " ".join(f"{f * 1e3:>16.2f} {fb * 1e3:>16.2f}"
                                                 for f, fb in times) + ratios, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["jax"],
                        choices=["jax", "nvdiffrast", "torch"])
    args = parser.parse_args()
    model = flame.synthetic_flame()
    topology = antialias_topology(model.faces)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; mesh {model.faces.shape[0]} triangles")
    if args.backends != ["jax"]:
        compare_backends(args, model, topology, rng)
        return
    print(f"{'size':>5} {'B':>3} {'fwd ms':>9} {'fwd+bwd ms':>11} {'ms/img':>8} "
          f"{'brute ms/img':>13} {'brute/jax':>10}")
    for size in args.sizes:
        res = (size, size)
        pos1 = clip_positions(model, 1, rng)
        brute = jax.jit(lambda p, res=res: brute_force_ids(p, model.faces, *res))
        ours_ids = np.asarray(rasterize(pos1, model.faces, res)[0][0, ..., 3]).astype(int) - 1
        ours_ids[ours_ids < 0] = model.faces.shape[0]
        agree = np.mean(np.asarray(brute(pos1[0])) == ours_ids)
        assert agree > 0.999, f"JAX and brute-force rasterizers disagree on {1 - agree:.2%}"
        t_brute = median_seconds(lambda p=pos1[0], f=brute: f(p), max(1, args.repeats // 2))
        for b in args.batches:
            pos = clip_positions(model, b, rng)
            colors = jnp.asarray(rng.uniform(size=(b, pos.shape[1], 3)), jnp.float32)
            fwd, loss = jax_pipeline(model, topology, res, "jax")
            tf = median_seconds(lambda p=pos, c=colors, f=fwd: f(p, c), args.repeats)
            tb = median_seconds(lambda p=pos, c=colors, f=loss: f(p, c), args.repeats)
            print(f"{size:>5} {b:>3} {tf * 1e3:>9.1f} {tb * 1e3:>11.1f} {tb / b * 1e3:>8.1f} "
                  f"{t_brute * 1e3:>13.1f} {t_brute * b / tf:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
