"""The synthetic head's 68-point landmark embedding (iBUG order), static and yaw-dependent.

Static points 17..67 are placed in the front view at the layout of ``surface.py`` and lifted
onto the front-most head triangle under them; the inner lip points sit on the mouth slit's
vertices (upper points on the upper lip's copies). The 17 contour points are, for every yaw bin,
the silhouette of the lower face seen from that yaw, found along 17 fixed directions around
the face centre in the image plane, as a 2-D landmark detector would mark the face outline.
"""

from __future__ import annotations

import numpy as np

from jaxface.flame.model import N_CONTOUR_BINS
from jaxface.flame.synthetic.rig import HEAD, LIP_COPY, RestMesh
from jaxface.flame.synthetic.surface import (
    BROW_Y,
    EYE_HALF_HEIGHT,
    EYE_HALF_WIDTH,
    EYE_X,
    EYE_Y,
    MOUTH_Y,
    NOSE_BASE_Y,
    NOSE_TIP_Y,
)


def static_targets_2d() -> np.ndarray:
    """(51, 2) front-view positions of landmarks 17..67; the inner lips (60..67) are NaN
    (they are put on the slit's vertices instead)."""
    brow_x = np.array([0.055, 0.046, 0.036, 0.026, 0.016])
    brow_y = BROW_Y + np.array([-0.003, 0.002, 0.004, 0.003, 0.0])
    brows = np.concatenate([np.stack([-brow_x, brow_y], 1), np.stack([brow_x, brow_y], 1)[::-1]])
    nose = [[0.0, 0.030], [0.0, 0.020], [0.0, 0.010], [0.0, NOSE_TIP_Y],
            [-0.013, NOSE_BASE_Y + 0.002], [-0.007, NOSE_BASE_Y - 0.001],
            [0.0, NOSE_BASE_Y - 0.002], [0.007, NOSE_BASE_Y - 0.001],
            [0.013, NOSE_BASE_Y + 0.002]]
    w, h = EYE_HALF_WIDTH, EYE_HALF_HEIGHT
    ring = np.array([[-w, 0], [-w / 3, h], [w / 3, h], [w, 0], [w / 3, -h], [-w / 3, -h]])
    right_eye = ring + [-EYE_X, EYE_Y]
    left_eye = ring + [EYE_X, EYE_Y]
    m = MOUTH_Y
    mouth_outer = [[-0.026, m + 0.002], [-0.016, m + 0.008], [-0.007, m + 0.011], [0.0, m + 0.010],
                   [0.007, m + 0.011], [0.016, m + 0.008], [0.026, m + 0.002], [0.016, m - 0.009],
                   [0.007, m - 0.012], [0.0, m - 0.013], [-0.007, m - 0.012], [-0.016, m - 0.009]]
    inner = np.full((8, 2), np.nan)
    return np.concatenate([brows, nose, right_eye, left_eye, mouth_outer, inner])


def _barycentric_2d(p_Nx2: np.ndarray, tri_Fx3x2: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, F, 3) of points in 2-D triangles."""
    a, b, c = tri_Fx3x2[:, 0], tri_Fx3x2[:, 1], tri_Fx3x2[:, 2]
    v0, v1 = b - a, c - a
    v2 = p_Nx2[:, None, :] - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-14, np.nan, den)
    l1 = (v2[..., 0] * v1[:, 1] - v1[:, 0] * v2[..., 1]) / den
    l2 = (v0[:, 0] * v2[..., 1] - v2[..., 0] * v0[:, 1]) / den
    return np.stack([1.0 - l1 - l2, l1, l2], -1)


def project_onto_front(mesh: RestMesh, targets_Nx2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each front-view point, the front-most head triangle under it and the barycentric
    coordinates there -> (face_idx (N,), bary (N, 3))."""
    faces = mesh.faces
    usable = np.isin(mesh.group[faces], (HEAD, LIP_COPY)).all(1)
    tri = mesh.verts[faces]
    bary = _barycentric_2d(targets_Nx2, tri[..., :2])
    inside = (bary >= -1e-9).all(-1) & usable[None]
    depth = np.einsum("nfk,fk->nf", np.nan_to_num(bary), tri[..., 2])
    depth = np.where(inside, depth, -np.inf)
    idx = np.argmax(depth, axis=1)
    if not np.all(np.isfinite(depth[np.arange(len(idx)), idx])):
        raise RuntimeError("a synthetic landmark fell outside the head mesh")
    return idx, bary[np.arange(len(idx)), idx]


def vertex_on_face(faces: np.ndarray, vertex: int, allowed: np.ndarray | None = None):
    """A triangle containing ``vertex`` (among ``allowed`` faces) and the one-hot barycentric."""
    rows, cols = np.nonzero(faces == vertex)
    if allowed is not None:
        keep = allowed[rows]
        rows, cols = rows[keep], cols[keep]
    return rows[0], np.eye(3)[cols[0]]


def edge_midpoint(faces: np.ndarray, v0: int, v1: int):
    """A triangle holding both ``v0`` and ``v1`` and the barycentric of their midpoint."""
    has = (faces == v0).any(1) & (faces == v1).any(1)
    f = np.flatnonzero(has)[0]
    return f, 0.5 * (faces[f] == v0) + 0.5 * (faces[f] == v1)


def inner_lips(mesh: RestMesh, originals: np.ndarray, copies: np.ndarray, corners: np.ndarray):
    """Landmarks 60..67 on the slit: corners, three upper (copies), three lower (originals)."""
    d = len(originals)
    quarter, mid = d // 4, d // 2
    upper = [copies[quarter], (copies[mid - 1], copies[mid]), copies[d - 1 - quarter]]
    lower = [originals[d - 1 - quarter], (originals[mid], originals[mid - 1]), originals[quarter]]
    out = [vertex_on_face(mesh.faces, corners[0])]
    for v in upper:
        out.append(edge_midpoint(mesh.faces, *v) if isinstance(v, tuple)
                   else vertex_on_face(mesh.faces, v))
    out.append(vertex_on_face(mesh.faces, corners[1]))
    for v in lower:
        out.append(edge_midpoint(mesh.faces, *v) if isinstance(v, tuple)
                   else vertex_on_face(mesh.faces, v))
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


def contour(mesh: RestMesh, yaw_deg: float, ear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 17 contour landmarks (right ear-level, chin, left ear-level) seen at ``yaw_deg``."""
    yaw = np.radians(yaw_deg)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    v = mesh.verts @ rot.T
    centre = np.array([0.0, 0.0, 0.06]) @ rot.T
    # The outermost projected point along a direction is on the outline; the search excludes
    # the neck, the ears and the back of the skull, which a face outline does not follow.
    cand = ((mesh.group == HEAD) & mesh.on_head & ~ear
            & (mesh.verts[:, 1] < EYE_Y - 0.004) & (mesh.verts[:, 2] > -0.04))
    rel = v[cand, :2] - centre[:2]
    ang = np.arctan2(rel[:, 0], -rel[:, 1])  # 0 = straight down, positive towards +x
    dist = np.linalg.norm(rel, axis=1)
    gammas = np.radians(np.linspace(-100.0, 100.0, 17))
    diff = np.abs(np.angle(np.exp(1j * (ang[None] - gammas[:, None]))))
    score = np.where(diff < np.radians(4.0), dist[None], -np.inf)
    best = np.flatnonzero(cand)[np.argmax(score, axis=1)]
    if not np.all(np.isfinite(score.max(1))):
        raise RuntimeError(f"no silhouette found for a contour landmark at yaw {yaw_deg}")
    picks = [vertex_on_face(mesh.faces, int(b)) for b in best]
    return np.array([p[0] for p in picks]), np.array([p[1] for p in picks])


def landmark_embedding(mesh: RestMesh, lip_originals, lip_copies, lip_corners,
                       ear: np.ndarray) -> dict[str, np.ndarray]:
    """The six landmark arrays of a FLAME model (see :class:`jaxface.flame.FlameModel`)."""
    targets = static_targets_2d()
    outer = ~np.isnan(targets[:, 0])
    faces_s = np.zeros(51, np.int64)
    bary_s = np.zeros((51, 3))
    faces_s[outer], bary_s[outer] = project_onto_front(mesh, targets[outer])
    faces_s[~outer], bary_s[~outer] = inner_lips(mesh, lip_originals, lip_copies, lip_corners)
    yaws = np.concatenate([np.arange(0, 40), -np.arange(1, 40)])  # DECA's bin order
    assert len(yaws) == N_CONTOUR_BINS
    dyn = [contour(mesh, y, ear) for y in yaws]
    dyn_faces = np.stack([d[0] for d in dyn])
    dyn_bary = np.stack([d[1] for d in dyn])
    return {
        "static_lmk_faces": faces_s, "static_lmk_bary": bary_s,
        "dynamic_lmk_faces": dyn_faces, "dynamic_lmk_bary": dyn_bary,
        "full_lmk_faces": np.concatenate([dyn_faces[0], faces_s]),
        "full_lmk_bary": np.concatenate([dyn_bary[0], bary_s]),
    }
