import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from jaxface import flame
from jaxface.data.now_layout import NOW_FROM_68
from jaxface.eval.now import (
    align_to_scan,
    crop_scan,
    crop_sphere,
    cumulative_error_curve,
    read_pp,
    scan_errors,
    summarize,
)


def _neutral(model):
    out = flame.forward(model, jnp.zeros((1, model.n_shape)), jnp.zeros((1, model.n_expression)),
                        jnp.zeros((1, 15)))
    return (np.asarray(out.vertices[0], np.float64),
            np.asarray(out.landmarks3d[0], np.float64)[NOW_FROM_68])


def test_crop_sphere_closed_form():
    lm = np.array([[-40.0, 0, 0], [-10, 0, 0], [10, 0, 0], [40, 0, 0], [0, -40, 0],
                   [-20, -60, 0], [20, -60, 0]])
    centre, radius = crop_sphere(lm)
    np.testing.assert_allclose(centre, [0, -28, 0])          # 0.3 of the way up to the bridge
    assert radius == 1.4 * (80 + 40) / 2
    pts = np.array([[0, -28 + radius - 1e-9, 0], [0, -28 + radius + 1e-6, 0]])
    assert len(crop_scan(pts, lm)) == 1


def test_read_pp(tmp_path):
    names = ["a", "b", "c", "d", "e", "f", "g"]
    body = "".join(f'  <point x="{i}.5" y="{-i}" z="{2 * i}" active="1" name="{n}"/>\n'
                   for i, n in enumerate(names))
    path = tmp_path / "lm.pp"
    path.write_text(f"<!DOCTYPE PickedPoints>\n<PickedPoints>\n <DocumentData/>\n{body}"
                    "</PickedPoints>\n")
    np.testing.assert_allclose(read_pp(path), [[i + 0.5, -i, 2 * i] for i in range(7)])


def test_alignment_recovers_a_known_similarity(model, rng):
    verts, lm = _neutral(model)
    rot = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
    scale, shift = rng.uniform(800, 1200), rng.normal(size=3) * 50
    scan = scale * verts @ rot.T + shift                       # the "scan": the mesh, moved
    scan_lm = scale * lm @ rot.T + shift
    cropped = crop_scan(scan, scan_lm)
    aligned = align_to_scan(verts, np.asarray(model.faces), lm, cropped, scan_lm)
    np.testing.assert_allclose(aligned, scan, atol=2e-3 * scale / 1000)
    errors = scan_errors(scan, scan_lm, verts, np.asarray(model.faces), lm)
    assert errors.shape == (len(cropped),) and errors.max() < 1e-2


def test_metrical_track_fits_rotation_and_translation_only(model, rng):
    """Metrical: a prediction in metres against a scan in mm. A scan that is the mesh
    rigidly moved is matched exactly; a scan 10 % larger is not rescaled, so its error
    is the size mismatch, while the non-metrical track absorbs it."""
    verts, lm = _neutral(model)
    faces = np.asarray(model.faces)
    rot = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
    shift = rng.normal(size=3) * 50
    scan, scan_lm = 1000 * verts @ rot.T + shift, 1000 * lm @ rot.T + shift
    errors = scan_errors(scan, scan_lm, verts, faces, lm, metrical=True)
    assert errors.max() < 1e-2
    big, big_lm = 1.1 * (scan - shift) + shift, 1.1 * (scan_lm - shift) + shift
    metrical = scan_errors(big, big_lm, verts, faces, lm, metrical=True)
    free = scan_errors(big, big_lm, verts, faces, lm, metrical=False)
    assert np.median(metrical) > 1.0 and free.max() < 1e-2


def test_known_offsets_give_the_known_statistics(model, rng):
    """A scan made of points offset from the (mm-scaled) surface along the face normals by
    known amounts: the reported median / mean / std are those of the offsets."""
    verts, lm = _neutral(model)
    verts, lm = verts * 1000, lm * 1000
    faces = np.asarray(model.faces)
    tri = verts[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    centroids = tri.mean(1)
    centre, radius = crop_sphere(lm)
    inside = np.flatnonzero(np.linalg.norm(centroids - centre, axis=1) < 0.9 * radius)
    offsets = rng.uniform(0.0, 0.05, len(inside)) * np.where(np.arange(len(inside)) % 2, 1, -1)
    scan = centroids[inside] + offsets[:, None] * normals[inside]
    errors = scan_errors(scan, lm, verts, faces, lm, metrical=False)
    report = summarize([errors])
    truth = np.abs(offsets)
    assert report["points"] == len(inside)
    np.testing.assert_allclose(report["median_mm"], np.median(truth), rtol=0.02)
    np.testing.assert_allclose(report["mean_mm"], np.mean(truth), rtol=0.02)
    np.testing.assert_allclose(report["std_mm"], np.std(truth), rtol=0.02)


def test_cumulative_curve():
    t, frac = cumulative_error_curve([np.array([0.5, 1.5]), np.array([2.5, 3.5])], 4.0, 9)
    np.testing.assert_allclose(t, np.arange(9) * 0.5)
    np.testing.assert_allclose(frac, [0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1])
