"""FLAME forward and forward+backward: jit-compiled jnp vs PyTorch (its own LBS and smplx's).

    python benchmarks/flame_forward.py [--batches 1 8 64] [--repeats 30]

Both sides run the same computation in float32 on the CPU, on the synthetic head (5023
vertices, 100 shape / 50 expression components): blend shapes, joint regression, Rodrigues,
pose correctives, the kinematic chain, skinning, and the 68 landmarks (dynamic contour chosen
by yaw) plus the 68 static ones. Forward+backward is the gradient of a sum of squares of all
outputs w.r.t. shape, expression and pose. The PyTorch version is written here from the same
formula (torch is the optional `torch` extra; without it only the JAX column is printed),
and smplx's FLAME layer (the reference implementation most FLAME users run; the same head
written in its layout by ``flame.save_smplx_flame``, with its contour landmarks). Reported:
median wall time over the repeats after warm-up, and the ratios torch / jax and smplx / jax
(> 1 means JAX is faster).
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


def jax_runners(model, shape, expression, pose):
    def loss(s, e, p):
        out = flame.forward(model, s, e, p)
        return sum(jnp.sum(x * x) for x in out)

    fwd = jax.jit(lambda s, e, p: flame.forward(model, s, e, p))
    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
    args = tuple(jnp.asarray(a) for a in (shape, expression, pose))
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
    args = parser.parse_args()
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
          + (f"; torch {torch.__version__}, {torch.get_num_threads()} threads" if torch else ""))
    rng = np.random.default_rng(0)
    header = f"{'B':>4} {'pass':<17} {'jax ms':>9}"
    print(header + (f" {'torch ms':>9} {'torch/jax':>9}" if torch else "")
          + (f" {'smplx ms':>9} {'smplx/jax':>9}" if smplx_folder else ""))
    for b in args.batches:
        shape = rng.normal(size=(b, 100)).astype(np.float32)
        expression = rng.normal(size=(b, 50)).astype(np.float32)
        pose = rng.normal(scale=0.2, size=(b, 15)).astype(np.float32)
        jf, jb = jax_runners(model, shape, expression, pose)
        runs = [("forward", jf), ("forward+backward", jb)]
        if torch is not None:
            tf, tb, tforward = torch_runners(arrays, shape, expression, pose)
            got = np.asarray(flame.forward(model, *map(jnp.asarray, (shape, expression, pose)))
                             .vertices)
            with torch.no_grad():
                want = tforward(*map(torch.from_numpy, (shape, expression, pose)))[0].numpy()
            assert np.abs(got - want).max() < 1e-4, "the two implementations disagree"
            runs = [("forward", jf, tf), ("forward+backward", jb, tb)]
        if smplx_folder is not None:
            sf, sb = smplx_runners(smplx_folder, shape, expression, pose)
            runs = [(*runs[0], sf), (*runs[1], sb)]
        for name, *fns in runs:
            tj = median_seconds(fns[0], args.repeats) * 1e3
            line = f"{b:>4} {name:<17} {tj:>9.2f}"
            for other in fns[1:]:
                tt = median_seconds(other, args.repeats) * 1e3
                line += f" {tt:>9.2f} {tt / tj:>9.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
