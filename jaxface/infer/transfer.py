"""``jaxface transfer``: one face's expression and head pose on another face (DECA's
expression transfer).

The result keeps the *target*'s identity (shape), albedo, lighting, camera and detail code
and takes the *source*'s expression, jaw and global rotation; F_d decodes the details anew
from the target's detail code and the source's expression and jaw, so the wrinkles follow the
expression. Inputs are ``reconstruct``'s parameter files (``<name>_params.npz``) or photos
(reconstructed first, into ``<out>/inputs/``). Writes, in ``<out>/``::

    transfer_coarse.obj / .mtl / _albedo.png   the transferred FLAME mesh, textured
    transfer_detail.obj                         its dense detail mesh
    transfer_params.npz                         the transferred parameters and outputs
    transfer.png                                source | target | transferred (detail shape)
    sweep/frame_###.png, sweep.gif              with ``frames`` > 0: target -> transferred,
                                                expression and pose interpolated linearly
"""

from __future__ import annotations

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.reconstruction.assets import jit_with_assets
from jaxface.reconstruction.mesh_io import label_columns, write_face_meshes, write_png
from jaxface.reconstruction.model_folder import LoadedModel, load_model
from jaxface.reconstruction.predict import (
    OUTPUTS,
    detail_normal_map,
    detail_surface,
    outputs_of_decoded,
    with_dense_layout,
)
from jaxface.render import render_shape

# What the target keeps and what the source gives (pose = global rotation and jaw).
FROM_TARGET = ("shape", "tex", "light", "cam", "detail_code")
FROM_SOURCE = ("exp", "pose")
NEEDED = FROM_TARGET + FROM_SOURCE


class TransferError(ValueError):
    """An input is neither a parameter file with the needed arrays nor a usable photo."""


def load_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays :data:`NEEDED` of a ``reconstruct`` parameter file."""
    path = pathlib.Path(path)
    with np.load(path) as data:
        missing = [k for k in NEEDED if k not in data.files]
        if missing:
            raise TransferError(f"{path}: no {missing} (is it reconstruct's _params.npz?)")
        return {k: np.asarray(data[k], np.float32) for k in NEEDED}


def transferred(source: dict, target: dict, weight: float = 1.0) -> dict:
    """The target's parameters with the source's expression and pose, blended by ``weight``
    (0: the target as it is, 1: the source's expression and pose)."""
    out = {k: target[k] for k in FROM_TARGET}
    for k in FROM_SOURCE:
        out[k] = (1.0 - weight) * target[k] + weight * source[k]
    return out


def make_decode(model: LoadedModel, size: int):
    """-> jit ``decode(p) -> outputs``: :func:`outputs_of_decoded` (F_d's displacement from
    ``p``'s detail code, expression and jaw), the dense detail surface and the detail-shape
    picture."""
    cfg = model.cfg

    def decode(params, stats, p, dense_uv_rast, assets):
        out = outputs_of_decoded(model.graphdef, params, stats, p, assets, cfg, size)
        normals = detail_normal_map(out["vertices"], out["displacement"], assets,
                                    cfg.render.backend)
        surface = detail_surface(out["vertices"], out["displacement"], assets,
                                 cfg.render.backend, dense_uv_rast)
        picture = render_shape(out["vertices"], out["cam"], assets.topology, (size, size),
                               normals, backend=cfg.render.backend)
        return out | surface | {"detail_shape": picture}

    return with_dense_layout(jit_with_assets(decode, model.assets), model.assets, cfg)


def _as_params(path: pathlib.Path, model_dir, out_dir: pathlib.Path, detector, size: int
               ) -> dict[str, np.ndarray]:
    """A parameter file's arrays, or a photo's (reconstructed into ``out_dir/inputs``)."""
    if path.suffix == ".npz":
        return load_params(path)
    from jaxface.infer.reconstruct import reconstruct

    report = reconstruct(model_dir, [path], out_dir / "inputs" / path.stem, detector,
                         batch_size=1, size=size, progress=False)
    if not report["ok"]:
        raise TransferError(f"{path}: {next(iter(report['failed'].values()))}")
    folder = pathlib.Path(next(iter(report["ok"].values()))[0])
    return load_params(folder / f"{folder.name}_params.npz")


def transfer(model_dir: str | os.PathLike, source: str | os.PathLike,
             target: str | os.PathLike, out_dir: str | os.PathLike, detector=None,
             frames: int = 0, size: int = 224) -> dict:
    """``jaxface transfer`` (the module docstring). ``detector``: the landmark backend for
    photo inputs. Returns {"out", "files"}."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = [pathlib.Path(source), pathlib.Path(target)]
    for path in inputs:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    model = load_model(model_dir)
    src, tgt = (_as_params(p, model_dir, out_dir, detector, size) for p in inputs)
    decode = make_decode(model, size)

    def run(p):
        batch = {k: jnp.asarray(v)[None] for k, v in p.items()}
        return {k: np.asarray(v[0]) for k, v in
                jax.device_get(decode(model.params, model.batch_stats, batch)).items()}

    results = [run(src), run(tgt), run(transferred(src, tgt))]
    result = results[-1]
    meshes = write_face_meshes(out_dir, "transfer", result, model.assets.topology)
    np.savez(out_dir / "transfer_params.npz", **{k: v for k, v in result.items()
                                                 if k in OUTPUTS})
    write_png(out_dir / "transfer.png", label_columns(np.concatenate(
        [r["detail_shape"] for r in results], 1), ["source", "target", "transferred"]))
    files = ["transfer.png", *meshes, "transfer_params.npz"]
    if frames > 0:
        files += _sweep(run, src, tgt, frames, out_dir / "sweep")
    return {"out": str(out_dir), "files": files}


def _sweep(run, src, tgt, frames: int, folder: pathlib.Path) -> list[str]:
    """Frames target -> transferred (PNGs and an animated GIF that plays there and back)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i, w in enumerate(np.linspace(0.0, 1.0, frames)):
        picture = run(transferred(src, tgt, float(w)))["detail_shape"]
        write_png(folder / f"frame_{i:03d}.png", picture)
        images.append(Image.open(folder / f"frame_{i:03d}.png").convert("RGB"))
    loop = images + images[-2:0:-1]
    loop[0].save(folder.parent / "sweep.gif", save_all=True, append_images=loop[1:],
                 duration=80, loop=0)
    return [f"sweep/frame_{i:03d}.png" for i in range(frames)] + ["sweep.gif"]
