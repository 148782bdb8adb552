"""OBJ/PNG writers and the dense detail mesh, checked by reading the files back."""

import numpy as np
import trimesh
from PIL import Image

from jaxface.reconstruction.mesh_io import (
    dense_mesh,
    split_uv_seams,
    uv_grid,
    write_glb,
    write_obj,
    write_png,
    write_png16,
)


def test_obj_with_uvs_round_trips_through_trimesh(rng, tmp_path):
    # A random closed-ish mesh: a tetrahedron fan with its own UV indices.
    vertices = rng.normal(size=(4, 3))
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    uvs = rng.random((6, 2))
    uv_faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [1, 4, 5]])
    write_png(tmp_path / "tex.png", rng.random((8, 8, 3)))
    write_obj(tmp_path / "m.obj", vertices, faces, uvs, uv_faces, "tex.png")
    assert "map_Kd tex.png" in (tmp_path / "m.mtl").read_text()
    mesh = trimesh.load(tmp_path / "m.obj", process=False)
    # trimesh splits vertices at UV seams: compare the triangles' corners, not indices.
    np.testing.assert_allclose(mesh.vertices[mesh.faces], vertices[faces], atol=1e-6)
    np.testing.assert_allclose(mesh.visual.uv[mesh.faces], uvs[uv_faces], atol=1e-6)
    assert mesh.visual.material.image.size == (8, 8)


def test_split_uv_seams_gives_each_corner_its_position_and_uv(rng):
    faces = rng.integers(0, 6, (10, 3))
    uv_faces = rng.integers(0, 9, (10, 3))
    position_index, uv_index, new_faces = split_uv_seams(faces, uv_faces)
    np.testing.assert_array_equal(position_index[new_faces], faces)
    np.testing.assert_array_equal(uv_index[new_faces], uv_faces)
    pairs = set(zip(faces.reshape(-1).tolist(), uv_faces.reshape(-1).tolist(), strict=True))
    assert len(position_index) == len(pairs)          # one vertex per distinct pair


def test_glb_round_trips_positions_uvs_and_texture(rng, tmp_path):
    vertices = rng.normal(size=(4, 3))
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    uvs = rng.random((6, 2))
    uv_faces = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [1, 4, 5]])
    texture = rng.random((8, 16, 3))
    write_glb(tmp_path / "m.glb", vertices, faces, uvs, uv_faces, texture)
    mesh = trimesh.load(tmp_path / "m.glb", force="mesh", process=False)
    np.testing.assert_allclose(mesh.vertices[mesh.faces], vertices[faces], atol=1e-6)
    # trimesh reads glTF's v-down UVs back into OBJ's v-up convention.
    np.testing.assert_allclose(mesh.visual.uv[mesh.faces], uvs[uv_faces], atol=1e-6)
    image = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"), np.float64) / 255
    assert np.abs(image - texture).max() <= 0.5 / 255 + 1e-12


def test_obj_without_uvs(rng, tmp_path):
    vertices, faces = rng.normal(size=(5, 3)), np.array([[0, 1, 2], [2, 3, 4]])
    write_obj(tmp_path / "m.obj", vertices, faces)
    lines = (tmp_path / "m.obj").read_text().splitlines()
    v = np.array([[float(x) for x in line.split()[1:]] for line in lines if line[:2] == "v "])
    f = np.array([[int(x) for x in line.split()[1:]] for line in lines if line[:2] == "f "])
    np.testing.assert_allclose(v, vertices, rtol=1e-6)
    np.testing.assert_array_equal(f - 1, faces)


def test_png_writers_round_trip(rng, tmp_path):
    image = rng.random((5, 7, 3))
    write_png(tmp_path / "a.png", image)
    back = np.asarray(Image.open(tmp_path / "a.png"), np.float64) / 255
    assert np.abs(back - image).max() <= 0.5 / 255 + 1e-12
    values = rng.uniform(-0.01, 0.01, (6, 4))
    write_png16(tmp_path / "d.png", values, -0.01, 0.01)
    raw = np.asarray(Image.open(tmp_path / "d.png"), np.float64)
    assert raw.shape == (6, 4) and raw.max() <= 65535
    assert np.abs(-0.01 + raw / 65535 * 0.02 - values).max() <= 0.02 / 65535


def test_dense_mesh_keeps_covered_texels_and_their_triangles(rng):
    size = 5
    positions = rng.normal(size=(size, size, 3))
    covered = np.ones((size, size), bool)
    covered[0, 0] = covered[3, 2] = False
    vertices, faces, uvs = dense_mesh(positions, covered, uv_flipped=False)
    assert len(vertices) == size * size - 2
    # Every kept triangle's corners are covered texels, and every grid triangle with three
    # covered corners is kept: 2 (S-1)^2 minus the ones touching an uncovered texel.
    flat_index = {tuple(np.round(uv * size - 0.5).astype(int)): i for i, uv in enumerate(uvs)}
    touching = sum(1 for i in range(size - 1) for j in range(size - 1) for tri in
                   (((i + 1, j), (i + 1, j + 1), (i, j + 1)), ((i + 1, j), (i, j + 1), (i, j)))
                   if any(not covered[r, c] for r, c in tri))
    assert len(faces) == 2 * (size - 1) ** 2 - touching
    for row, uv in zip(vertices, uvs, strict=True):
        j, i = int(uv[0] * size), int((1 - uv[1]) * size)
        np.testing.assert_array_equal(row, positions[i, j])
    assert len(flat_index) == len(uvs)
    np.testing.assert_allclose(uv_grid(2), [[0.25, 0.75], [0.75, 0.75], [0.25, 0.25],
                                            [0.75, 0.25]])
