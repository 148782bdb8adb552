"""The NoW pipeline on a NoW-shaped folder made here: scans of the synthetic head, predictions
in the official layout, the report files; and a model's predictions written in that layout."""

import csv
import json

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxface import flame
from jaxface.cli import main
from jaxface.data.now_layout import NOW_FROM_68, NowLayoutError, now_root
from jaxface.eval.now_benchmark import evaluate_predictions, read_obj, write_report
from jaxface.reconstruction.mesh_io import write_obj

IMAGES = ["S1/multiview_neutral/IMG_1.jpg", "S1/selfie/IMG_2.jpg", "S2/selfie/IMG_3.jpg"]


def _pp(points):
    body = "".join(f' <point x="{x}" y="{y}" z="{z}" name="{i}" active="1"/>\n'
                   for i, (x, y, z) in enumerate(points))
    return f"<!DOCTYPE PickedPoints>\n<PickedPoints>\n{body}</PickedPoints>\n"


@pytest.fixture(scope="module")
def now_folder(tmp_path_factory):
    """final_release_version/ with two subjects whose scans are the synthetic neutral head
    (different shapes), in mm, rotated and moved; predictions for IMG_1 (subject S1's exact
    head), IMG_2 (S1's head with a different identity) and none for IMG_3."""
    model = flame.synthetic_flame()
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("NoW_Dataset") / "final_release_version"
    heads = {}
    for subject in ("S1", "S2"):
        shape = jnp.asarray(rng.normal(size=(1, model.n_shape)) * 0.5, jnp.float32)
        out = flame.forward(model, shape, jnp.zeros((1, model.n_expression)), jnp.zeros((1, 15)))
        verts = np.asarray(out.vertices[0], np.float64)
        lm = np.asarray(out.landmarks3d[0], np.float64)[NOW_FROM_68]
        heads[subject] = (verts, lm)
        rot = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
        shift = rng.normal(size=3) * 30
        (root / "scans" / subject).mkdir(parents=True)
        (root / "scans_lmks_onlypp" / subject).mkdir(parents=True)
        write_obj(root / "scans" / subject / "scan.obj", 1000 * verts @ rot.T + shift,
                  np.asarray(model.faces))
        (root / "scans_lmks_onlypp" / subject / "scan.pp").write_text(
            _pp(1000 * lm @ rot.T + shift))
    (root / "imagepathsvalidation.txt").write_text("\n".join(IMAGES) + "\n")
    pred = root.parent / "predictions"
    faces = np.asarray(model.faces)
    for image, (verts, lm) in ((IMAGES[0], heads["S1"]), (IMAGES[1], heads["S2"])):
        stem = pred / image.replace(".jpg", "")
        stem.parent.mkdir(parents=True, exist_ok=True)
        write_obj(stem.with_suffix(".obj"), verts, faces)
        np.save(stem.with_suffix(".npy"), lm)
    return root, pred


def test_evaluation_and_report(now_folder, tmp_path):
    root, pred = now_folder
    assert now_root(root.parent) == root
    result = evaluate_predictions(root.parent, pred, "val", progress=False)
    assert list(result["missing"]) == [IMAGES[2]]
    rows = {r["image"]: r for r in result["images"]}
    assert rows[IMAGES[0]]["median_mm"] < 1e-2          # the scan's own head: exact fit
    assert rows[IMAGES[1]]["median_mm"] > 0.1           # another identity: a real error
    summary = write_report(result, tmp_path, "test")
    assert summary["images"] == 2 and summary["missing"] == 1
    all_errors = np.concatenate(list(result["errors"].values()))
    np.testing.assert_allclose(summary["median_mm"], np.median(all_errors))
    with open(tmp_path / "per_image.csv") as f:
        assert [r["image"] for r in csv.DictReader(f)] == IMAGES[:2]
    assert (tmp_path / "cumulative_error.png").stat().st_size > 1000
    curve = np.loadtxt(tmp_path / "cumulative_error.csv", delimiter=",", skiprows=1)
    assert curve[-1, 1] <= 1.0 and np.all(np.diff(curve[:, 1]) >= 0)
    assert json.loads((tmp_path / "summary.json").read_text())["missing_images"] == \
        result["missing"]


def test_evaluate_now_cli(now_folder, tmp_path, capsys):
    root, pred = now_folder
    assert main(["evaluate-now", f"--now={root}", f"--predictions={pred}",
                 f"--out={tmp_path}", "--metrical"]) == 0
    out = capsys.readouterr()
    assert "2 images" in out.out and "not evaluated S2/selfie/IMG_3.jpg" in out.err
    assert main(["evaluate-now", f"--now={tmp_path}", f"--predictions={pred}",
                 f"--out={tmp_path / 'x'}"]) == 2
    assert "not the NoW dataset" in capsys.readouterr().err
    assert main(["evaluate-now", f"--now={root}", f"--predictions={tmp_path / 'none'}",
                 f"--out={tmp_path / 'y'}"]) == 2


def test_read_obj_handles_uv_indices_and_polygons(tmp_path):
    path = tmp_path / "q.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 4/1\nf -1 -2 -3\n")
    v, f = read_obj(path)
    assert v.shape == (4, 3)
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3], [3, 2, 1]])
    path.write_text("v 0 0 0\nf 1 2 3\n")
    with pytest.raises(ValueError, match="not a triangle mesh"):
        read_obj(path)


def test_layout_errors_name_what_is_missing(tmp_path):
    with pytest.raises(NowLayoutError, match="now.is.tue.mpg.de"):
        now_root(tmp_path)


def test_now_predict_writes_the_official_layout(tiny_model, sample_photos, now_folder,
                                                tmp_path):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    import shutil

    root, _ = now_folder
    for image in IMAGES:      # the photos: package sample photos under NoW's names
        target = root / "iphone_pictures" / image
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_photos / "grace_hopper.jpg", target)
    assert main(["now-predict", f"--model={tiny_model}", f"--now={root}",
                 f"--out={tmp_path}", "--batch-size=2"]) == 0
    for image in IMAGES:
        v, f = read_obj(tmp_path / image.replace(".jpg", ".obj"))
        lm = np.load(tmp_path / image.replace(".jpg", ".npy"))
        assert v.shape == (5023, 3) and lm.shape == (7, 3)
        # The 7 landmarks lie on the neutral mesh's scale (metres, a head ~0.2 m wide).
        assert np.ptp(lm[:, 0]) < np.ptp(v[:, 0]) < 1.0
    result = evaluate_predictions(root, tmp_path, "val", progress=False)
    assert not result["missing"] and all(np.isfinite(r["median_mm"]) for r in result["images"])
