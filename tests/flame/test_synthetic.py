"""Properties of the embedded synthetic head: FLAME's format, a sound mesh, a working rig."""

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame
from jaxface.flame import synthetic
from jaxface.flame.synthetic import rig, surface, topology

_forward = jax.jit(flame.forward)


def test_flame_sizes(head_arrays):
    a = head_arrays
    assert a["v_template"].shape == (5023, 3) and a["faces"].shape == (9976, 3)
    assert a["shapedirs"].shape == (5023, 3, 300) and a["exprdirs"].shape == (5023, 3, 100)
    assert a["posedirs"].shape == (5023, 3, 36) and a["j_regressor"].shape == (5, 5023)
    assert a["lbs_weights"].shape == (5023, 5) and tuple(a["parents"]) == (-1, 0, 1, 1, 1)
    assert a["dynamic_lmk_faces"].shape == (79, 17) and a["full_lmk_faces"].shape == (68,)
    assert a["uv_faces"].shape == (9976, 3) and a["uvs"].min() >= 0 and a["uvs"].max() <= 1


@pytest.mark.slow
def test_deterministic(head_arrays):
    again = synthetic.synthetic_head_arrays.__wrapped__(0)
    for key, value in head_arrays.items():
        np.testing.assert_array_equal(value, again[key], err_msg=key)


def _edges(faces):
    return [tuple(e) for f in faces for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))]


def test_mesh_is_closed_but_for_neck_and_mouth_and_consistently_oriented(head_arrays):
    faces = head_arrays["faces"]
    directed = Counter(_edges(faces))
    assert max(directed.values()) == 1, "an edge is used twice in the same direction"
    undirected = Counter(tuple(sorted(e)) for e in directed)
    assert max(undirected.values()) == 2
    boundary = [e for e, n in undirected.items() if n == 1]
    # The open neck ring (32 edges) and the lip slit (2 x 15 edges), as FLAME is open there.
    assert len(boundary) == topology.N_NECK + 2 * (topology.N_LIP_DUPLICATES + 1)
    verts = head_arrays["v_template"].astype(np.float64)
    tri = verts[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.linalg.norm(normals, axis=1).min() > 0, "degenerate triangle"
    # Outward: the signed volume enclosed (the neck and slit are small holes) is positive and
    # close to an ellipsoid of the head's extent.
    volume = np.einsum("fi,fi->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    extent = verts.max(0) - verts.min(0)
    assert 0.3 < volume / (np.pi / 6 * np.prod(extent)) < 1.2


def test_skinning_weights_and_regressor(head_arrays):
    w, reg = head_arrays["lbs_weights"], head_arrays["j_regressor"]
    assert w.min() >= 0 and np.allclose(w.sum(1), 1, atol=1e-6)
    assert np.allclose(reg.sum(1), 1, atol=1e-6)
    eyes = np.flatnonzero(w[:, 3] > 0.5)
    assert len(eyes) == 2 + topology.EYE_RINGS * topology.EYE_SEGMENTS
    np.testing.assert_allclose(reg[3] @ head_arrays["v_template"], surface.eye_centres()[0],
                               atol=1e-6)


def _lip_gap(model, pose=None, expression=None):
    layout = topology.head_layout()
    pose = jnp.zeros((1, 15)) if pose is None else pose
    expression = jnp.zeros((1, model.n_expression)) if expression is None else expression
    v = np.asarray(_forward(model, jnp.zeros((1, model.n_shape)), expression, pose).vertices[0])
    return v[layout.lip_copies] - v[layout.lip_originals]  # upper minus lower lip


def test_jaw_rotation_opens_the_mouth(model):
    np.testing.assert_allclose(_lip_gap(model), 0.0, atol=1e-7)
    pose = jnp.zeros((1, 15)).at[0, 6].set(0.3)  # jaw about x
    gap = _lip_gap(model, pose)
    mid = len(gap) // 2
    assert gap[mid, 1] > 0.015, "the lower lip must drop well below the upper lip"
    assert np.all(gap[:, 1] > 0.003)


def test_first_expression_parts_the_lips(model):
    expression = jnp.zeros((1, model.n_expression)).at[0, 0].set(2.0)
    gap = _lip_gap(model, expression=expression)
    assert gap[len(gap) // 2, 1] > 0.003


def test_eye_rotation_turns_the_eyeball_about_its_centre(model):
    pose = jnp.zeros((1, 15)).at[0, 10].set(0.4)  # left eye about y
    out = _forward(model, jnp.zeros((1, 100)), jnp.zeros((1, 50)), pose)
    rest = np.asarray(model.v_template)
    w = np.asarray(model.lbs_weights)
    eye = w[:, 3] > 0.5
    centre = surface.eye_centres()[0]
    moved = np.asarray(out.vertices[0])[eye]
    np.testing.assert_allclose(np.linalg.norm(moved - centre, axis=1),
                               np.linalg.norm(rest[eye] - centre, axis=1), atol=1e-6)
    pupil = moved[np.argmax(rest[eye][:, 2])]
    assert pupil[0] - centre[0] > 0.004  # looking towards +x


def test_shape_basis_is_orthogonal_falling_smooth_and_mostly_symmetric(head_arrays):
    dirs = head_arrays["shapedirs"].astype(np.float64)
    flat = dirs.reshape(-1, 300)
    gram = flat.T @ flat
    norms = np.sqrt(np.diag(gram))
    assert np.allclose(gram / np.outer(norms, norms), np.eye(300), atol=1e-4)
    assert np.all(np.diff(norms) < 0)
    assert 0.002 < norms[0] / np.sqrt(5023) < 0.006  # first component: ~4 mm RMS
    edges = np.array(list({tuple(sorted(e)) for e in _edges(head_arrays["faces"])}))
    def roughness(d):  # mean change across an edge / mean displacement (white noise: ~1.1)
        jump = np.linalg.norm(d[edges[:, 0]] - d[edges[:, 1]], axis=1).mean()
        return jump / np.linalg.norm(d, axis=1).mean()

    noise = np.random.default_rng(0).normal(size=(5023, 3))
    assert roughness(noise) > 1.0
    assert max(roughness(dirs[..., k]) for k in range(20)) < 0.25
    mesh = synthetic.rest_mesh()[0]
    d = dirs[..., 0]
    np.testing.assert_allclose(d[mesh.mirror] * [-1, 1, 1], d, atol=1e-6)


def test_landmarks_sit_on_their_features(model):
    out = _forward(model, jnp.zeros((1, 100)), jnp.zeros((1, 50)), jnp.zeros((1, 15)))
    lm = np.asarray(out.landmarks3d[0])
    right_eye, left_eye = lm[36:42].mean(0), lm[42:48].mean(0)
    np.testing.assert_allclose(right_eye[:2], [-surface.EYE_X, surface.EYE_Y], atol=2e-3)
    np.testing.assert_allclose(left_eye[:2], [surface.EYE_X, surface.EYE_Y], atol=2e-3)
    assert lm[30, 2] == lm[:, 2].max()                   # the nose tip sticks out most
    assert abs(lm[66, 1] - surface.MOUTH_Y) < 3e-3       # inner lips on the mouth line
    contour = lm[:17]
    assert np.argmin(contour[:, 1]) in (7, 8, 9)         # the chin is the contour's bottom
    sides = np.r_[0:8, 9:17]  # symmetric; the chin point sits on a vertex next to the midline
    np.testing.assert_allclose(contour[::-1, 0][sides], -contour[sides, 0], atol=1e-6)
    assert abs(contour[8, 0]) < 3e-3
    # The front-view landmarks land exactly on their layout targets.
    targets = synthetic.landmarks.static_targets_2d()
    outer = ~np.isnan(targets[:, 0])
    np.testing.assert_allclose(lm[17:][outer, :2], targets[outer], atol=1e-6)


@pytest.mark.parametrize("yaw", [-30.0, 20.0, 35.0])
def test_contour_follows_the_outline_when_the_head_turns(model, yaw):
    bin_ = int(yaw) if yaw >= 0 else 39 - int(yaw)
    assert np.any(np.asarray(model.dynamic_lmk_faces[bin_] != model.dynamic_lmk_faces[0]))
    pose = jnp.zeros((1, 15)).at[0, 1].set(np.radians(yaw))
    out = _forward(model, jnp.zeros((1, 100)), jnp.zeros((1, 50)), pose)
    verts, lm = np.asarray(out.vertices[0]), np.asarray(out.landmarks3d[0])
    mesh, _, _, _, ear = synthetic.rest_mesh()
    face = (mesh.group == rig.HEAD) & mesh.on_head & ~ear & (mesh.verts[:, 2] > -0.04)
    for k in (2, 3, 13, 14):  # cheek points: outermost face point at their height in the image
        band = face & (np.abs(verts[:, 1] - lm[k, 1]) < 0.003)
        side = np.sign(k - 8)
        outermost = side * np.max(side * verts[band, 0])
        assert abs(lm[k, 0] - outermost) < 0.004, (k, lm[k, 0], outermost)


def test_uv_layout_has_no_folds_or_overlaps(head_arrays):
    uv = head_arrays["uvs"].astype(np.float64)[head_arrays["uv_faces"]]
    area = 0.5 * ((uv[:, 1, 0] - uv[:, 0, 0]) * (uv[:, 2, 1] - uv[:, 0, 1])
                  - (uv[:, 2, 0] - uv[:, 0, 0]) * (uv[:, 1, 1] - uv[:, 0, 1]))
    assert np.all(area > 0), "every UV triangle keeps the mesh's orientation (no folds)"
    res = 256
    coverage = np.zeros((res, res), np.int32)
    centres = (np.arange(res) + 0.5) / res
    for tri in uv:  # count the triangles covering each texel centre
        lo = np.floor(tri.min(0) * res).astype(int)
        hi = np.ceil(tri.max(0) * res).astype(int)
        us, vs = np.meshgrid(centres[lo[0]:hi[0]], centres[lo[1]:hi[1]], indexing="ij")
        p = np.stack([us, vs], -1)
        inside = np.ones(us.shape, bool)
        for k in range(3):
            a, b = tri[k], tri[(k + 1) % 3]
            inside &= ((b[0] - a[0]) * (p[..., 1] - a[1]) - (b[1] - a[1]) * (p[..., 0] - a[0])) > 0
        coverage[lo[0]:hi[0], lo[1]:hi[1]] += inside
    assert coverage.max() == 1
    assert np.isclose(area.sum(), (coverage > 0).mean(), atol=0.02)


def test_albedo_model(head_arrays):
    mean, basis = head_arrays["albedo_mean"], head_arrays["albedo_basis"]
    assert mean.shape == (256, 256, 3) and basis.shape == (256, 256, 3, 20)
    assert mean.min() >= 0 and mean.max() <= 1
    flat = basis.reshape(-1, 20).astype(np.float64)
    gram = flat.T @ flat
    norms = np.sqrt(np.diag(gram))
    assert np.allclose(gram / np.outer(norms, norms), np.eye(20), atol=1e-4)


def test_rig_groups(head_arrays):
    mesh = synthetic.rest_mesh()[0]
    assert (mesh.group == rig.LIP_COPY).sum() == topology.N_LIP_DUPLICATES
    assert np.all(mesh.mirror[mesh.mirror] == np.arange(len(mesh.mirror)))


def test_bad_component_counts():
    with pytest.raises(ValueError, match="n_shape"):
        flame.synthetic_flame(n_shape=301)
