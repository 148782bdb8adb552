"""Writing reconstructions: Wavefront OBJ meshes with UV coordinates and a material, the same
meshes as textured binary glTF (``.glb``, via trimesh), PNG images, and DECA's dense detail
mesh (one vertex per covered texel of the UV layout)."""

from __future__ import annotations

import io
import os
import pathlib

import numpy as np
from PIL import Image

from jaxface.render.uv import grid_faces


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_obj(path: str | os.PathLike, vertices_Vx3: np.ndarray, faces_Fx3: np.ndarray,
              uvs_Tx2: np.ndarray | None = None, uv_faces_Fx3: np.ndarray | None = None,
              texture: str | None = None) -> None:
    """An OBJ (1-based indices; ``f v/vt`` when UVs are given) and, with ``texture`` (a PNG
    file name next to it), a ``.mtl`` of the same stem whose diffuse map is that PNG."""
    path = pathlib.Path(path)
    out = io.StringIO()
    if texture is not None:
        mtl = path.with_suffix(".mtl")
        _atomic_write(mtl, f"newmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\n"
                           f"map_Kd {texture}\n".encode())
        out.write(f"mtllib {mtl.name}\n")
    np.savetxt(out, np.asarray(vertices_Vx3, np.float64), fmt="v %.7g %.7g %.7g")
    faces = np.asarray(faces_Fx3, np.int64) + 1
    if uvs_Tx2 is not None:
        np.savetxt(out, np.asarray(uvs_Tx2, np.float64), fmt="vt %.7g %.7g")
        if texture is not None:
            out.write("usemtl face\n")
        uv_faces = np.asarray(faces_Fx3 if uv_faces_Fx3 is None else uv_faces_Fx3,
                              np.int64) + 1
        pairs = np.stack([faces, uv_faces], -1).reshape(len(faces), 6)
        np.savetxt(out, pairs, fmt="f %d/%d %d/%d %d/%d")
    else:
        np.savetxt(out, faces, fmt="f %d %d %d")
    _atomic_write(path, out.getvalue().encode())


def split_uv_seams(faces_Fx3: np.ndarray, uv_faces_Fx3: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OBJ's two index sets (positions and UVs per corner) -> one per-vertex index set, as
    glTF needs: a vertex per distinct (position, UV) pair, so a vertex on a UV seam is
    duplicated. -> (position index per new vertex, UV index per new vertex, faces (F, 3))."""
    pairs = np.stack([np.asarray(faces_Fx3, np.int64).reshape(-1),
                      np.asarray(uv_faces_Fx3, np.int64).reshape(-1)], -1)
    unique, corner_to_vertex = np.unique(pairs, axis=0, return_inverse=True)
    return unique[:, 0], unique[:, 1], corner_to_vertex.reshape(-1, 3)


def write_glb(path: str | os.PathLike, vertices_Vx3: np.ndarray, faces_Fx3: np.ndarray,
              uvs_Tx2: np.ndarray, uv_faces_Fx3: np.ndarray | None,
              texture_HxWx3: np.ndarray) -> None:
    """A binary glTF of the mesh with ``texture`` (floats in [0, 1]) as its base colour,
    sampled at the OBJ-convention UVs (v up; trimesh flips v for glTF). Units and axes are the
    vertices' own (FLAME: metres, y up, the face looking down +z)."""
    import trimesh

    position_index, uv_index, faces = split_uv_seams(
        faces_Fx3, faces_Fx3 if uv_faces_Fx3 is None else uv_faces_Fx3)
    texture = np.round(np.clip(np.asarray(texture_HxWx3, np.float64), 0, 1) * 255)
    visual = trimesh.visual.TextureVisuals(
        uv=np.asarray(uvs_Tx2, np.float64)[uv_index],
        image=Image.fromarray(texture.astype(np.uint8)))
    mesh = trimesh.Trimesh(np.asarray(vertices_Vx3, np.float64)[position_index], faces,
                           visual=visual, process=False)
    _atomic_write(pathlib.Path(path), mesh.export(file_type="glb"))


def write_png(path: str | os.PathLike, image_HxWxC: np.ndarray) -> None:
    """An 8-bit PNG of a float image in [0, 1] (clipped); 1 channel -> grayscale."""
    arr = np.clip(np.asarray(image_HxWxC, np.float64), 0.0, 1.0)
    arr = np.round(arr * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(buf, format="PNG")
    _atomic_write(pathlib.Path(path), buf.getvalue())


def label_columns(image_HxWx3: np.ndarray, labels: list[str]) -> np.ndarray:
    """``image`` (floats in [0, 1], equal-width columns side by side) under a white strip
    naming each column."""
    from PIL import ImageDraw

    h, w = image_HxWx3.shape[:2]
    strip = Image.new("RGB", (w, 14), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    step = w / len(labels)
    for k, text in enumerate(labels):
        draw.text((int(k * step) + 3, 1), text, fill=(0, 0, 0))
    header = np.asarray(strip, np.float32) / 255.0
    return np.concatenate([header, np.clip(np.asarray(image_HxWx3, np.float32), 0, 1)], 0)


def write_png16(path: str | os.PathLike, values_HxW: np.ndarray, lo: float, hi: float) -> None:
    """A 16-bit grayscale PNG of ``values`` mapped linearly from [lo, hi] to [0, 65535]
    (clipped): value = lo + pixel / 65535 * (hi - lo)."""
    arr = (np.asarray(values_HxW, np.float64) - lo) / (hi - lo)
    arr = np.round(np.clip(arr, 0.0, 1.0) * 65535).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    _atomic_write(pathlib.Path(path), buf.getvalue())


def uv_grid(size: int) -> np.ndarray:
    """The UV coordinate (S * S, 2) of each texel centre of an S x S UV image (row 0 at
    v = 1), row-major."""
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return np.stack([(j + 0.5) / size, 1.0 - (i + 0.5) / size], -1).reshape(-1, 2)


def dense_mesh(positions_SxSx3: np.ndarray, covered_SxS: np.ndarray, uv_flipped: bool
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid mesh of a UV position map -> (vertices (N, 3), faces (F, 3), uvs (N, 2)):
    one vertex per covered texel, the grid triangles whose three corners are covered."""
    size = positions_SxSx3.shape[0]
    faces = grid_faces(size, uv_flipped)
    covered = np.asarray(covered_SxS).reshape(-1)
    faces = faces[covered[faces].all(axis=1)]
    used = np.zeros(size * size, bool)
    used[faces.reshape(-1)] = True
    new_index = np.cumsum(used) - 1
    vertices = np.asarray(positions_SxSx3).reshape(-1, 3)[used]
    return vertices, new_index[faces].astype(np.int64), uv_grid(size)[used]


def write_face_meshes(folder: pathlib.Path, stem: str, out: dict, topology) -> list[str]:
    """A face's albedo texture and its coarse FLAME mesh and dense detail mesh (from ``out``'s
    ``albedo``, ``vertices``, and ``detail_positions`` / ``detail_covered`` of
    :func:`~jaxface.reconstruction.predict.detail_surface`), each as OBJ (+ .mtl) and
    textured .glb -> the file names written."""
    texture = f"{stem}_albedo.png"
    write_png(folder / texture, out["albedo"])
    faces, uvs, uv_faces = (np.asarray(a) for a in
                            (topology.faces, topology.uv_coords, topology.uv_faces))
    dense = dense_mesh(out["detail_positions"], out["detail_covered"], topology.uv_flipped)
    meshes = {"coarse": (out["vertices"], faces, uvs, uv_faces),
              "detail": (dense[0], dense[1], dense[2], None)}
    files = [texture]
    for kind, (vertices, mesh_faces, mesh_uvs, mesh_uv_faces) in meshes.items():
        write_obj(folder / f"{stem}_{kind}.obj", vertices, mesh_faces, mesh_uvs,
                  mesh_uv_faces, texture)
        write_glb(folder / f"{stem}_{kind}.glb", vertices, mesh_faces, mesh_uvs,
                  mesh_uv_faces, out["albedo"])
        files += [f"{stem}_{kind}.obj", f"{stem}_{kind}.glb"]
    return files
