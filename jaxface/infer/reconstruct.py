"""``jaxface reconstruct``: photos in, textured detailed meshes out.

Per photo (its best face, or with ``min_face_score`` every face): detection and 68
landmarks, DECA's square crop, the face mask (:mod:`jaxface.data.prepare`), then one
jit-compiled batch step — the encoders, FLAME, the detail displacement and the renders — and
per face, in ``<out>/<name>/`` (a photo's second face on: ``<out>/<name>_face<k>/``):

    <name>_coarse.obj / .mtl    FLAME mesh with FLAME's UVs, textured with the albedo
    <name>_detail.obj / .mtl    the dense detail mesh (a vertex per UV texel, displaced)
    <name>_coarse.glb, _detail.glb  the same two meshes as textured binary glTF (FLAME's
                                units and axes: metres, y up, the face towards +z)
    <name>_albedo.png           the UV albedo map
    <name>_displacement.png     16-bit UV displacement, [-d, d] -> [0, 65535] (d in the JSON)
    <name>_normals.png          the detailed surface's UV normal map (FLAME's frame, n / 2 + 0.5)
    <name>_params.npz           every output of the network (see jaxface.reconstruction.predict)
                                and ``vertices_photo``: the mesh in the photo's pixels
    <name>_deca.npz             the parameters under DECA's names and camera convention
                                (:func:`deca_codedict`), for FLAME tools that read DECA's
    <name>_params.json          FLAME parameters, camera, light, landmarks in the photo, and
                                the camera of the original photo (``camera_photo``: a 3 x 4
                                orthographic P and OpenCV-style K, R, t; geometry.camera.
                                photo_camera)
    <name>_overlay_photo.png    the shaded reconstruction drawn over the whole photo
    <name>_vis.png              input | landmarks | coarse shape | detail shape | overlay
                                (labelled above)

Photos without a usable face are reported (``report.json``) and the others go on. Batches
have a fixed size (the last one padded) so the step compiles once. Video files and folders
of frames: :mod:`jaxface.infer.video`.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.prepare import IMAGE_SUFFIXES, prepare_faces, prepared_batches, read_rgb
from jaxface.geometry.camera import photo_camera
from jaxface.infer.gallery import make_turntable, write_index, write_turntables
from jaxface.models.params import code_of_camera
from jaxface.reconstruction.assets import jit_with_assets
from jaxface.reconstruction.mesh_io import (
    label_columns,
    write_face_meshes,
    write_png,
    write_png16,
)
from jaxface.reconstruction.model_folder import LoadedModel, load_model
from jaxface.reconstruction.predict import (
    OUTPUTS,
    detail_normal_map,
    detail_surface,
    predict,
    render_geometry,
    with_dense_layout,
)
from jaxface.render import render_shape
from jaxface.render.overlay import draw_points

PARAM_KEYS = ("shape", "exp", "pose", "tex", "cam", "light", "detail_code")
CAMERA_CONVENTION = (
    "orthographic: photo pixel (column, row, 1) = P @ (X, Y, Z, 1) for FLAME-frame points X "
    "(metres); P = K @ [[1,0,0,0],[0,1,0,0],[0,0,0,1]] @ [[R, t],[0,0,0,1]] with OpenCV axes "
    "(x right, y down, z into the scene)")
VIS_COLUMNS = ["input", "landmarks", "coarse shape",   # landmarks: detected green, ours red
               "detail shape", "overlay"]


def find_photos(inputs) -> list[pathlib.Path]:
    """The image files among ``inputs`` (files, and folders searched recursively)."""
    photos = []
    for item in map(pathlib.Path, inputs):
        if not item.exists():
            raise FileNotFoundError(f"no such photo or folder: {item}")
        if item.is_dir():
            photos += sorted(p for p in item.rglob("*")
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            photos.append(item)
    return photos


def writable_folder(path: str | os.PathLike) -> pathlib.Path:
    """``path`` created if needed; PermissionError naming it when files cannot be written
    there (checked up front, not after minutes of work)."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to {path}")
    return path


def make_reconstruct_step(model: LoadedModel, size: int):
    """-> jit ``step(params, batch_stats, batch) -> dict``: :func:`predict`'s outputs plus
    :func:`with_views`."""
    cfg, assets = model.cfg, model.assets

    def step(params, stats, batch, dense_uv_rast, assets):
        out = predict(model.graphdef, params, stats, batch, assets, cfg)
        return with_views(out, batch, assets, cfg, size, dense_uv_rast)

    return with_dense_layout(jit_with_assets(step, assets), assets, cfg)


def with_views(out: dict, batch: dict, assets, cfg, size: int, dense_uv_rast) -> dict:
    """``out`` (:data:`~jaxface.reconstruction.predict.OUTPUTS`) plus what
    :func:`write_face` draws and meshes: the shape renders, the overlay, the landmark picture
    at the crop's ``size`` and the detail surface on ``dense_uv_rast``
    (:func:`~jaxface.reconstruction.predict.detail_surface`). jit-able."""
    top, res = assets.topology, (size, size)
    normals = detail_normal_map(out["vertices"], out["displacement"], assets,
                                cfg.render.backend)
    surface = detail_surface(out["vertices"], out["displacement"], assets,
                             cfg.render.backend, dense_uv_rast)
    overlay = render_geometry(out, batch["image"], assets, cfg, normals, size)
    # Detected landmarks green, the reconstruction's red.
    marks = draw_points(batch["image"], batch["landmarks"], (0.2, 1.0, 0.2))
    marks = draw_points(marks, out["landmarks2d"], (1.0, 0.2, 0.2))
    return out | {
        "coarse_shape": render_shape(out["vertices"], out["cam"], top, res,
                                     backend=cfg.render.backend),
        "detail_shape": render_shape(out["vertices"], out["cam"], top, res, normals,
                                     backend=cfg.render.backend),
        "overlay": overlay.image, "overlay_alpha": overlay.alpha,
        "landmark_image": marks, "detail_normals": normals} | surface


def crop_to_photo(points_Nx2: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """Points in a ``size`` crop's pixels -> the photo's (``crop``: centre x, centre y, side)."""
    cx, cy, side = crop
    return points_Nx2 * (side / size) + np.array([cx - side / 2, cy - side / 2])


def deca_codedict(out: dict) -> dict[str, np.ndarray]:
    """One face's parameters under DECA's codedict names, for FLAME tools that read DECA's:
    ``shape``, ``exp`` (FLAME's identity / expression coefficients), ``pose`` (global
    rotation and jaw, axis-angle, radians), ``tex`` (albedo coefficients), ``light`` (9 x 3
    SH), ``detail`` (E_d's code; not for a fit, which has none) and ``cam`` in DECA's
    convention (s, t') with the projection
    s (X + t') (jaxface's camera is s X + t, t = s t'). FLAME's frame: metres, y up, the face
    looking along +z; ndc x right, y up over the square crop."""
    cam = np.asarray(code_of_camera(jnp.asarray(out["cam"], jnp.float32)[None], 0.0, "deca")[0])
    detail = {"detail": out["detail_code"]} if "detail_code" in out else {}
    return {"shape": out["shape"], "exp": out["exp"], "pose": out["pose"], "tex": out["tex"],
            "light": out["light"], "cam": cam} | detail


def overlay_on_photo(photo_HxWx3: np.ndarray, overlay_SxSx3: np.ndarray,
                     alpha_SxSx1: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """The crop's shaded render (``overlay`` where ``alpha`` covers it) put back into the
    whole photo (uint8) -> the photo with the face drawn over it, uint8."""
    from PIL import Image

    size = overlay_SxSx3.shape[0]
    cx, cy, side = (float(v) for v in crop)
    scale = size / side
    # PIL's affine maps output (photo) pixel corners to input (crop) ones.
    warp = (scale, 0.0, -(cx - side / 2) * scale, 0.0, scale, -(cy - side / 2) * scale)
    shape = (photo_HxWx3.shape[1], photo_HxWx3.shape[0])

    def to_photo(image):
        return np.asarray(Image.fromarray(image).transform(
            shape, Image.Transform.AFFINE, warp, resample=Image.Resampling.BILINEAR),
            np.float32) / 255.0

    face = to_photo(np.round(np.clip(overlay_SxSx3, 0, 1) * 255).astype(np.uint8))
    cover = to_photo(np.round(np.clip(alpha_SxSx1[..., 0], 0, 1) * 255).astype(np.uint8))
    photo = photo_HxWx3.astype(np.float32) / 255.0
    mixed = photo * (1.0 - cover[..., None]) + face * cover[..., None]
    return np.round(mixed * 255).astype(np.uint8)


def write_face(folder: pathlib.Path, name: str, out: dict, example: dict, assets, cfg,
               size: int, photo_HxWx3: np.ndarray | None = None) -> dict:
    """The files of one face (the module docstring) from :func:`with_views`' outputs for it;
    returns its JSON record. ``photo_HxWx3``: the whole photo (uint8), for the overlay on it."""
    folder.mkdir(parents=True, exist_ok=True)
    write_face_meshes(folder, name, out, assets.topology)
    d = float(cfg.model.displacement_scale)
    write_png16(folder / f"{name}_displacement.png", out["displacement"][..., 0], -d, d)
    camera = photo_camera(out["cam"], example["crop"])
    vertices_photo = (np.asarray(out["vertices"], np.float64) @ camera["P"][:, :3].T
                      + camera["P"][:, 3])[:, :2]
    np.savez(folder / f"{name}_params.npz",
             **{k: v for k, v in out.items() if k in OUTPUTS},
             vertices_photo=vertices_photo.astype(np.float32))
    np.savez(folder / f"{name}_deca.npz", **deca_codedict(out))
    if photo_HxWx3 is not None:
        photo = overlay_on_photo(photo_HxWx3, out["overlay"], out["overlay_alpha"],
                                 example["crop"])
        write_png(folder / f"{name}_overlay_photo.png", photo.astype(np.float32) / 255.0)
    write_png(folder / f"{name}_normals.png", 0.5 * np.asarray(out["detail_normals"]) + 0.5)
    image = example["image"].astype(np.float32) / 255.0
    write_png(folder / f"{name}_vis.png", label_columns(np.concatenate(
        [image, out["landmark_image"], out["coarse_shape"], out["detail_shape"],
         out["overlay"]], axis=1), VIS_COLUMNS))
    record = {k: np.asarray(out[k]).tolist() for k in PARAM_KEYS if k in out}
    record.update({
        "landmarks2d_crop": out["landmarks2d"].tolist(),
        "landmarks2d_photo": crop_to_photo(out["landmarks2d"], example["crop"], size).tolist(),
        "detected_landmarks_photo": crop_to_photo(example["landmarks"], example["crop"],
                                                   size).tolist(),
        "face_box_photo": example["face_box"].tolist(),
        "crop_photo": {"centre": example["crop"][:2].tolist(), "side": float(example["crop"][2]),
                       "size": size},
        "camera_photo": {k: v.tolist() for k, v in camera.items()} | {
            "convention": CAMERA_CONVENTION},
        "displacement_png_range": [-d, d], "units": "FLAME units (metres)"})
    (folder / f"{name}_params.json").write_text(json.dumps(record, indent=1))
    return record


def write_faces(out_dir: pathlib.Path, paths, examples, out: dict, assets, cfg, size: int,
                names: dict, report: dict, photo: dict, draw_all: bool = False
                ) -> list[pathlib.Path]:
    """:func:`write_face` for each face of a batch (``out``: its outputs, batched) into
    ``out_dir/<photo name>/`` (the k-th face of a photo, k > 1: ``<photo name>_face<k>/``),
    appending each folder to ``report["ok"][photo]``. ``names``: each photo's name so far (a
    photo name seen before in another folder gets a suffix). ``photo``: {"path", "rgb",
    "all"}, the last photo decoded (a photo's faces are consecutive, also across batches, so
    each photo is read once) and with ``draw_all`` that photo with its faces drawn so far,
    written as ``<name>_overlay_photo_all.png`` into its first face's folder once it has
    several. Returns the batch's face folders."""
    folders = []
    for i, (path, example) in enumerate(zip(paths, examples, strict=True)):
        if str(path) not in names:
            name, k = path.stem, 1
            while name in names.values():
                name, k = f"{path.stem}_{k}", k + 1
            names[str(path)] = name
        name = names[str(path)]
        if photo.get("path") != path:
            rgb = read_rgb(path)
            photo.update(path=path, rgb=rgb, all=rgb)
        rank = int(example.get("face_index", 0))
        folder = out_dir / (name if rank == 0 else f"{name}_face{rank + 1}")
        face = {key: v[i] for key, v in out.items()}
        write_face(folder, folder.name, face, example, assets, cfg, size, photo["rgb"])
        report["ok"].setdefault(str(path), []).append(str(folder))
        folders.append(folder)
        if draw_all:
            photo["all"] = overlay_on_photo(photo["all"], face["overlay"],
                                            face["overlay_alpha"], example["crop"])
            if rank > 0:          # a photo of one face has its _overlay_photo.png
                write_png(out_dir / name / f"{name}_overlay_photo_all.png",
                          photo["all"].astype(np.float32) / 255.0)
    return folders


def reconstruct(model_dir: str | os.PathLike | LoadedModel, inputs, out_dir: str | os.PathLike,
                detector,
                batch_size: int = 8, size: int = 224, progress: bool = True,
                html: bool = False, turntable_frames: int = 12,
                min_face_score: float | None = None, videos: dict | None = None) -> dict:
    """Reconstructs every photo of ``inputs`` into ``out_dir``; returns the report
    ({"ok": {photo: [face folder, ...]}, "failed": {photo: reason}, "load_seconds": ...,
    "seconds": ...: the whole command, the model's load included}). ``html``: also each
    face's turntable frames and ``index.html`` (:mod:`jaxface.infer.gallery`; ``videos``: a
    :func:`~jaxface.infer.video.reconstruct_videos` report shown there too).
    ``min_face_score``: also every other face the detector scores at least this (dlib's HOG
    score; its false detections on face-like patches score lower than real faces), each in
    its own folder; None: the best face of each photo only. ``model_dir``: a model folder,
    or the model already loaded."""
    from tqdm import tqdm

    start = time.perf_counter()
    photos = find_photos(inputs)           # the cheap checks first, before the model loads
    out_dir = writable_folder(out_dir)
    model = model_dir if isinstance(model_dir, LoadedModel) else load_model(model_dir)
    report = {"ok": {}, "failed": {}, "load_seconds": round(time.perf_counter() - start, 3)}
    step = make_reconstruct_step(model, size)
    turntable = make_turntable(model, size, turntable_frames) if html else None
    names: dict[str, str] = {}
    photo: dict = {}
    bar = tqdm(photos, desc="reconstruct", unit="photo", disable=not progress)
    for paths, examples, batch in prepared_batches(
            bar, lambda path: prepare_faces(path, detector, size, min_face_score), batch_size,
            report["failed"]):
        out = jax.device_get(step(model.params, model.batch_stats,
                                  {k: jnp.asarray(v) for k, v in batch.items()}))
        folders = write_faces(out_dir, paths, examples, out, model.assets, model.cfg, size,
                              names, report, photo, draw_all=min_face_score is not None)
        if turntable is not None:
            write_turntables(turntable, folders, out)
    bar.close()
    if html:
        write_index(out_dir, report, turntable_frames, videos)
    report["seconds"] = round(time.perf_counter() - start, 3)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report
