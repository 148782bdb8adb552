"""``jaxface reconstruct`` on real photos (scikit-image's astronaut, matplotlib's grace_hopper,
and the two side by side) with a random-init exported model: every file is written and valid,
the mesh's landmarks land on the face, every face of a photo is reconstructed, bad photos are
reported while the others go on."""

import json
import pathlib
import shutil

import numpy as np
import pytest
import trimesh
from PIL import Image

from jaxface.cli import main
from jaxface.reconstruction.predict import OUTPUTS

FACES = ("astronaut", "grace_hopper")
SUFFIXES = ("_coarse.obj", "_coarse.mtl", "_coarse.glb", "_detail.obj", "_detail.mtl",
            "_detail.glb", "_albedo.png",
            "_displacement.png", "_normals.png", "_params.npz", "_deca.npz", "_params.json",
            "_vis.png", "_overlay_photo.png")


@pytest.fixture(scope="module")
def reconstructed(tiny_model, sample_photos, tmp_path_factory):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    from jaxface.data.landmarks import landmark_backend
    from jaxface.infer.reconstruct import reconstruct

    photos = tmp_path_factory.mktemp("inputs")
    for p in sample_photos.iterdir():
        shutil.copy(p, photos / p.name)
    (photos / "truncated.jpg").write_bytes((photos / "grace_hopper.jpg").read_bytes()[:300])
    Image.fromarray(np.full((120, 90, 3), 200, np.uint8)).save(photos / "no_face.png")
    Image.fromarray(two_faces(sample_photos)).save(photos / "two_faces.png")
    out = tmp_path_factory.mktemp("reconstructed")
    # 0.5: both real faces (dlib scores ~1) but not the astronaut's mission patch (~0.1).
    report = reconstruct(tiny_model, [photos], out, landmark_backend("dlib"), batch_size=2,
                         progress=False, html=True, turntable_frames=5, min_face_score=0.5)
    return out, report


def two_faces(sample_photos) -> np.ndarray:
    """The astronaut and Grace Hopper side by side (at the astronaut's height)."""
    left = np.asarray(Image.open(sample_photos / "astronaut.png").convert("RGB"))
    right = Image.open(sample_photos / "grace_hopper.jpg").convert("RGB")
    h = left.shape[0]
    right = right.resize((round(right.width * h / right.height), h))
    return np.concatenate([left, np.asarray(right)], 1)


def test_bad_photos_are_reported_and_the_rest_go_on(reconstructed):
    out, report = reconstructed
    assert sorted(p.rsplit("/", 1)[1] for p in report["ok"]) == [
        "astronaut.png", "grace_hopper.jpg", "two_faces.png"]
    failed = {p.rsplit("/", 1)[1]: why for p, why in report["failed"].items()}
    assert failed["no_face.png"] == "no face found"
    assert "unreadable image" in failed["truncated.jpg"]
    assert json.loads((out / "report.json").read_text())["failed"] == report["failed"]
    assert not list(out.rglob("*.partial"))


@pytest.mark.parametrize("name", FACES)
def test_the_photo_camera_projects_the_mesh_onto_the_photo_landmarks(reconstructed, name):
    """The written camera (P, and K R t by their documented convention) takes the written 3-D
    landmarks to the written photo landmarks (0.5 px) and the mesh to ``vertices_photo``."""
    folder = reconstructed[0] / name
    record = json.loads((folder / f"{name}_params.json").read_text())
    params = np.load(folder / f"{name}_params.npz")
    assert set(params.files) == set(OUTPUTS) | {"vertices_photo"}
    camera = {k: np.asarray(v) for k, v in record["camera_photo"].items() if k != "convention"}
    hom = np.concatenate([params["landmarks3d"], np.ones((68, 1))], 1)
    projected = (hom @ camera["P"].T)[:, :2]
    want = np.asarray(record["landmarks2d_photo"])
    assert np.abs(projected - want).max() < 0.5
    opencv = (params["landmarks3d"] @ camera["R"].T + camera["t"])[:, :2] @ camera["K"][:2, :2].T
    np.testing.assert_allclose(opencv + camera["K"][:2, 2], projected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(camera["R"]), 1.0)
    verts = np.concatenate([params["vertices"], np.ones((len(params["vertices"]), 1))], 1)
    np.testing.assert_allclose(params["vertices_photo"], (verts @ camera["P"].T)[:, :2],
                               atol=1e-2)
    # DECA's names and camera: s (X + t') projects the landmarks where jaxface's s X + t does.
    deca = np.load(folder / f"{name}_deca.npz")
    assert set(deca.files) == {"shape", "exp", "pose", "cam", "tex", "light", "detail"}
    s_, t_ = deca["cam"][0], deca["cam"][1:]
    np.testing.assert_allclose(s_ * (params["landmarks3d"][:, :2] + t_),
                               params["cam"][0] * params["landmarks3d"][:, :2]
                               + params["cam"][1:], atol=1e-5)


@pytest.mark.parametrize("name", FACES)
def test_every_file_is_written_and_valid(reconstructed, tiny_model, name):
    folder = reconstructed[0] / name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [name + s for s in SUFFIXES] + ["turntable"])
    params = np.load(folder / f"{name}_params.npz")
    assert set(OUTPUTS) <= set(params.files)
    with np.load(tiny_model / "face_model.npz") as head:
        faces = head["faces"]
    n_faces = len(faces)
    coarse = trimesh.load(folder / f"{name}_coarse.obj", process=False)
    assert len(coarse.faces) == n_faces
    # The OBJ holds the predicted vertices (trimesh splits them at UV seams: compare sets).
    np.testing.assert_allclose(np.unique(np.round(coarse.vertices, 5), axis=0),
                               np.unique(np.round(params["vertices"], 5), axis=0), atol=2e-5)
    assert coarse.visual.uv.shape == (len(coarse.vertices), 2)
    assert coarse.visual.material.image.size == params["albedo"].shape[1::-1]
    # The glTF holds the same mesh and texture.
    glb = trimesh.load(folder / f"{name}_coarse.glb", force="mesh", process=False)
    np.testing.assert_allclose(glb.vertices[glb.faces], params["vertices"][faces], atol=1e-6)
    assert glb.visual.material.baseColorTexture.size == params["albedo"].shape[1::-1]
    detail = trimesh.load(folder / f"{name}_detail.obj", process=False)
    assert len(detail.vertices) > len(params["vertices"])   # never coarser than FLAME
    # The dense detail mesh lies on the coarse surface, within the displacement bound.
    lo, hi = coarse.vertices.min(0), coarse.vertices.max(0)
    assert np.all(detail.vertices.min(0) >= lo - 0.011) and np.all(
        detail.vertices.max(0) <= hi + 0.011)
    disp = np.asarray(Image.open(folder / f"{name}_displacement.png"))
    assert disp.dtype == np.uint16 and disp.shape == params["displacement"].shape[:2]
    record = json.loads((folder / f"{name}_params.json").read_text())
    lo_d, hi_d = record["displacement_png_range"]
    np.testing.assert_allclose(lo_d + disp / 65535 * (hi_d - lo_d),
                               params["displacement"][..., 0], atol=(hi_d - lo_d) / 65535)
    # The normal map: unit normals (8-bit) on the texels the UV layout covers, zero elsewhere.
    normals = np.asarray(Image.open(folder / f"{name}_normals.png"), np.float64) / 255 * 2 - 1
    length = np.linalg.norm(normals, axis=-1)
    assert normals.shape == params["displacement"].shape[:2] + (3,)
    assert np.mean(np.abs(length - 1) < 0.02) > 0.5 and np.all(length < 1.02)
    vis = Image.open(folder / f"{name}_vis.png")
    assert vis.size == (5 * 224, 224 + 14) and vis.mode == "RGB"   # under a label strip
    np.testing.assert_allclose(record["shape"], params["shape"], rtol=1e-6)


@pytest.mark.parametrize("name", FACES)
def test_the_mesh_landmarks_land_on_the_face(reconstructed, name):
    """Projected into the photo, the reconstruction's 68 landmarks have their centre in the
    detector's face box and lie inside the box grown by half its size (dlib's box is tight:
    the chin and brows of the detected landmarks themselves lie outside it)."""
    record = json.loads((reconstructed[0] / name / f"{name}_params.json").read_text())
    points = np.asarray(record["landmarks2d_photo"])
    left, top, right, bottom = record["face_box_photo"]
    cx, cy = points.mean(0)
    assert left <= cx <= right and top <= cy <= bottom
    w, h = right - left, bottom - top
    assert np.all((points[:, 0] >= left - w / 4) & (points[:, 0] <= right + w / 4))
    assert np.all((points[:, 1] >= top - h / 4) & (points[:, 1] <= bottom + h / 4))
    # The crop <-> photo mapping: the detected landmarks map back to where dlib found them.
    dx, dy = np.asarray(record["detected_landmarks_photo"]).mean(0)
    assert left <= dx <= right and top <= dy <= bottom


def test_reconstruct_cli(tiny_model, sample_photos, tmp_path, capsys):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    photo = sample_photos / "astronaut.png"
    assert main(["reconstruct", str(photo), f"--model={tiny_model}", f"--out={tmp_path}",
                 "--batch-size=2"]) == 0
    assert "reconstructed 1 face(s)" in capsys.readouterr().out
    assert (tmp_path / "astronaut" / "astronaut_detail.obj").is_file()
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(blank)
    assert main(["reconstruct", str(blank), f"--model={tiny_model}",
                 f"--out={tmp_path / 'b'}", "--batch-size=2"]) == 1
    assert "no face found" in capsys.readouterr().err


def test_the_html_gallery_shows_every_face_and_its_turntable(reconstructed):
    """index.html links only files that exist (no network), each face's strip and turntable
    frames (the shape turned, so the frames differ), and lists the skipped photos."""
    import re

    out, report = reconstructed
    page = (out / "index.html").read_text()
    links = re.findall(r'"([\w./-]+\.png)"', page)
    assert links and all((out / link).is_file() for link in links)
    assert "http" not in page
    for name in FACES:
        frames = sorted((out / name / "turntable").glob("frame_*.png"))
        assert len(frames) == 5 and f"{name}/turntable/frame_04.png" in page
        first, last = (np.asarray(Image.open(f), np.float64) for f in (frames[0], frames[-1]))
        assert np.abs(first - last).mean() > 1.0        # turned, not the same picture
        assert f"{name}/{name}_vis.png" in page
    assert "no_face.png: no face found" in page and "4 face(s) reconstructed" in page


@pytest.mark.parametrize("name", FACES)
def test_the_overlay_on_the_photo_keeps_the_photo_and_draws_the_face(reconstructed,
                                                                     sample_photos, name):
    folder = reconstructed[0] / name
    photo_file = next(p for p in sample_photos.iterdir() if p.stem == name)
    photo = np.asarray(Image.open(photo_file).convert("RGB"), np.int16)
    drawn = np.asarray(Image.open(folder / f"{name}_overlay_photo.png"), np.int16)
    assert drawn.shape == photo.shape
    record = json.loads((folder / f"{name}_params.json").read_text())
    (cx, cy), side = record["crop_photo"]["centre"], record["crop_photo"]["side"]
    rows, cols = np.mgrid[:photo.shape[0], :photo.shape[1]]
    outside = (np.abs(cols + 0.5 - cx) > side / 2 + 2) | (np.abs(rows + 0.5 - cy) > side / 2 + 2)
    assert outside.any() and np.array_equal(drawn[outside], photo[outside])
    # The face: the mesh's projected landmarks fall where the picture changed.
    nose = np.round(record["landmarks2d_photo"][30]).astype(int)
    assert np.abs(drawn[nose[1], nose[0]] - photo[nose[1], nose[0]]).sum() > 0


def test_every_face_of_a_photo_is_reconstructed_and_drawn(reconstructed, sample_photos):
    """The two-face photo: a folder per face (best first), each face's landmarks on its own
    half of the photo, both drawn on ``_overlay_photo_all.png``; the single-face photos keep
    one face (the mission patch scores under the threshold)."""
    out, report = reconstructed
    folders = {pathlib.Path(p).name: [pathlib.Path(f).name for f in fs]
               for p, fs in report["ok"].items()}
    assert folders == {"astronaut.png": ["astronaut"], "grace_hopper.jpg": ["grace_hopper"],
                       "two_faces.png": ["two_faces", "two_faces_face2"]}
    photo = two_faces(sample_photos).astype(np.int16)
    middle = 512                                   # the astronaut's width
    drawn = np.asarray(Image.open(out / "two_faces" / "two_faces_overlay_photo_all.png"),
                       np.int16)
    assert drawn.shape == photo.shape
    sides = []
    for name in ("two_faces", "two_faces_face2"):
        record = json.loads((out / name / f"{name}_params.json").read_text())
        points = np.asarray(record["landmarks2d_photo"])
        sides.append(bool(points[:, 0].mean() > middle))
        nose = np.round(points[30]).astype(int)
        assert np.abs(drawn[nose[1], nose[0]] - photo[nose[1], nose[0]]).sum() > 0
        assert (out / name / f"{name}_overlay_photo.png").is_file()
    assert sorted(sides) == [False, True]            # one face on each half
