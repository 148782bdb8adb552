"""FLAME forward and forward+backward: jit-compiled jnp vs PyTorch (its own LBS and smplx's).

    python benchmarks/flame_forward.py [--batches 1 8 64] [--repeats 30] [--system-malloc]

Both sides run the same computation in float32 on the CPU, on the synthetic head (5023
vertices, 100 shape / 50 expression components): blend shapes, joint regression, Rodrigues,
pose correctives, the kinematic chain, skinning, and the 68 landmarks (dynamic contour chosen
by yaw) plus the 68 static ones. Forward+backward is the gradient of a sum of squares of all
outputs w.r.t. shape, expression and pose. The PyTorch version is written here from the same
formula (torch is the optional `torch` extra; without it only the JAX column is printed),
and smplx's FLAME layer (the reference implementation most FLAME users run; the same head
written in its layout by ``flame.save_smplx_flame``, with its contour landmarks). Reported:
median wall time over the repeats after warm-up (JAX for every batch size first), and the
ratios torch / jax and smplx / jax (> 1 means JAX is faster). The process first keeps freed
heap memory mapped (:mod:`jaxface.host_memory`; both sides allocate with malloc);
``--system-malloc`` leaves glibc's default, under which XLA's buffers are page-faulted in
again on every call.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from timing import median_seconds

from jaxface import flame
from jaxface.host_memory import keep_freed_memory_mapped


def jax_runners(model, shape, expression, pose):
    """Forward and forward+backward, the model an argument of the compiled programs (as in
    training: closed over, its arrays would be constants of the program)."""
    def loss(m, s, e, p):
        out = flame.forward(m, s, e, p)
        return sum(jnp.sum(x * x) for x in out)

    fwd = jax.jit(flame.forward)
    grad = jax.jit(jax.value_and_grad(loss, argnums=(1, 2, 3)))
    args = (model, *(jnp.asarray(a) for a in (shape, expression, pose)))
    return (lambda: jax.block_until_ready(fwd(*args)),
            lambda: jax.block_until_ready(grad(*args)))


def torch_runners(arrays, shape, expression, pose):
    import torch

    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()
         if k != "parents"}
    parents = [int(p) for p in arrays["parents"]]
    faces = t["faces"].long()

    def rodrigues(r):
        angle = torch.sqrt((r * r).sum(-1, keepdim=True) + 1e-16)
        axis = r / angle
        x, y, z = axis.unbind(-1)
        zero = torch.zeros_like(x)
        k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).view(*r.shape[:-1], 3, 3)
        s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
        return torch.eye(3) + s * k + (1 - c) * (k @ k)

    def points(verts, face_idx, bary):
        tri = verts[torch.arange(verts.shape[0])[:, None, None], faces[face_idx]]
        return (tri * bary[..., None]).sum(2)

    def forward(s, e, p):
        b = s.shape[0]
        v = (t["v_template"] + torch.einsum("bk,vck->bvc", s, t["shapedirs"])
             + torch.einsum("bk,vck->bvc", e, t["exprdirs"]))
        joints = torch.einsum("jv,bvc->bjc", t["j_regressor"], v)
        rot = rodrigues(p.view(b, -1, 3))
        feature = (rot[:, 1:] - torch.eye(3)).reshape(b, -1)
        v = v + torch.einsum("bp,vcp->bvc", feature, t["posedirs"])
        rel = joints.clone()
        rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
        rots, trans = [rot[:, 0]], [rel[:, 0]]
        for j in range(1, len(parents)):
            rots.append(rots[parents[j]] @ rot[:, j])
            trans.append(trans[parents[j]] + (rots[parents[j]] @ rel[:, j, :, None])[..., 0])
        rw, posed = torch.stack(rots, 1), torch.stack(trans, 1)
        tw = posed - (rw @ joints[..., None])[..., 0]
        mats = torch.cat([rw, tw[..., None]], -1)
        per_vertex = torch.einsum("vj,bjmn->bvmn", t["lbs_weights"], mats)
        verts = (per_vertex[..., :3] @ v[..., None])[..., 0] + per_vertex[..., 3]
        head = rot[:, 0] @ rot[:, 1]
        sy = torch.sqrt(head[:, 0, 0] ** 2 + head[:, 1, 0] ** 2)
        yaw = torch.round(torch.rad2deg(torch.atan2(-head[:, 2, 0], sy))).clamp(-39, 39).long()
        bins = torch.where(yaw < 0, 39 - yaw, yaw)
        face_idx = torch.cat([t["dynamic_lmk_faces"].long()[bins],
                              t["static_lmk_faces"].long().expand(b, -1)], 1)
        bary = torch.cat([t["dynamic_lmk_bary"][bins], t["static_lmk_bary"].expand(b, -1, -1)], 1)
        lmk = points(verts, face_idx, bary)
        static = points(verts, t["full_lmk_faces"].long().expand(b, -1),
                        t["full_lmk_bary"].expand(b, -1, -1))
        return verts, posed, lmk, static

    args = [torch.from_numpy(a) for a in (shape, expression, pose)]

    def run_forward():
        with torch.no_grad():
            forward(*args)

    def run_backward():
        leaves = [a.clone().requires_grad_(True) for a in args]
        loss = sum((x * x).sum() for x in forward(*leaves))
        loss.backward()

    return run_forward, run_backward, forward


def smplx_runners(folder, shape, expression, pose):
    """smplx.FLAME on the head written to ``folder``: forward, and the gradient of the sum of
    squares of its vertices and joints (5 joints + 68 landmarks)."""
    import smplx
    import torch

    b = shape.shape[0]
    layer = smplx.FLAME(model_path=str(folder), num_betas=shape.shape[1],
                        num_expression_coeffs=expression.shape[1], use_face_contour=True,
                        batch_size=b, dtype=torch.float32)
    names = ("global_orient", "neck_pose", "jaw_pose", "leye_pose", "reye_pose")
    inputs = {"betas": shape, "expression": expression} | {
        n: pose[:, 3 * i:3 * i + 3] for i, n in enumerate(names)}
    inputs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}

    def run_forward():
        with torch.no_grad():
            layer(**inputs)

    def run_backward():
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        out = layer(**leaves)
        ((out.vertices ** 2).sum() + (out.joints ** 2).sum()).backward()

    return run_forward, run_backward


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's trimming of freed memory as it is")
    args = parser.parse_args()
    kept = not args.system_malloc and keep_freed_memory_mapped()
    model = flame.synthetic_flame()
    arrays = model.arrays()
    try:
        import torch
    except ImportError:
        torch = None
    try:
        import smplx  # noqa: F401
    except ImportError:
        smplx_folder = None
    else:
        smplx_folder = tempfile.mkdtemp(prefix="jaxface_smplx_")
        flame.save_smplx_flame(smplx_folder, model)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"jax {jax.__version__} on {jax.devices()[0].platform}"
          + (f"; torch {torch.__version__}, {torch.get_num_threads()} threads" if torch else "")
          + f"; freed heap kept mapped: {'yes' if kept else 'no'}")
    rng = np.random.default_rng(0)
    inputs = {b: (rng.normal(size=(b, 100)).astype(np.float32),
                  rng.normal(size=(b, 50)).astype(np.float32),
                  rng.normal(scale=0.2, size=(b, 15)).astype(np.float32)) for b in args.batches}
    # JAX first, for every batch size, before PyTorch runs anything: timed after PyTorch, JAX
    # ran up to 2x slower (PyTorch's idle OpenMP threads spin on the cores for a while).
    times = {b: [[median_seconds(fn, args.repeats) * 1e3]
                 for fn in jax_runners(model, *inputs[b])] for b in args.batches}
    for b in args.batches:
        shape, expression, pose = inputs[b]
        others = []
        if torch is not None:
            tf, tb, tforward = torch_runners(arrays, shape, expression, pose)
            got = np.asarray(flame.forward(model, *map(jnp.asarray, inputs[b])).vertices)
            with torch.no_grad():
                want = tforward(*map(torch.from_numpy, inputs[b]))[0].numpy()
            assert np.abs(got - want).max() < 1e-4, "the two implementations disagree"
            others.append((tf, tb))
        if smplx_folder is not None:
            others.append(smplx_runners(smplx_folder, shape, expression, pose))
        for forward_fn, backward_fn in others:
            times[b][0].append(median_seconds(forward_fn, args.repeats) * 1e3)
            times[b][1].append(median_seconds(backward_fn, args.repeats) * 1e3)
    header = f"{'B':>4} {'pass':<17} {'jax ms':>9}"
    print(header + (f" {'torch ms':>9} {'torch/jax':>9}" if torch else "")
          + (f" {'smplx ms':>9} {'smplx/jax':>9}" if smplx_folder else ""))
    for b in args.batches:
        for name, (tj, *others) in zip(("forward", "forward+backward"), times[b], strict=True):
            print(f"{b:>4} {name:<17} {tj:>9.2f}"
                  + "".join(f" {tt:>9.2f} {tt / tj:>9.2f}" for tt in others))


if __name__ == "__main__":
    main()
