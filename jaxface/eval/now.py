"""The NoW benchmark's procedure (Sanyal et al. 2019, soubhiksanyal/now_evaluation),
reimplemented on jaxface's geometry.

Per image: the predicted mesh's 7 landmarks (right-eye outer, right-eye inner, left-eye
inner, left-eye outer, nose bottom, right and left mouth corners; DECA-family methods take
the 68-point landmarks 36, 39, 42, 45, 33, 48, 54 of the *neutral* mesh) are aligned to the
scan's 7 picked points by a similarity (non-metrical track) or a rigid motion (metrical
track, the prediction in metres and the scan in millimetres); the scan is cropped to a
sphere around the face; the alignment is refined to minimise the scan-to-mesh distance
(closest-point iterations of the same objective the official code minimises with chumpy);
the error of the image is every cropped scan vertex's distance to the closest point on the
aligned predicted surface (mm). The benchmark reports the median, mean and standard
deviation over all images' vertices concatenated.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np

from jaxface.eval.point_to_mesh import closest_points_on_mesh, point_to_mesh_distance
from jaxface.geometry.alignment import fit_similarity

# The 7 NoW landmarks among the 68 iBUG points (DECA's choice).
NOW_FROM_68 = np.array([36, 39, 42, 45, 33, 48, 54])


def read_pp(path) -> np.ndarray:
    """The 7 points (7, 3) of a MeshLab picked-points file (NoW's ``*.pp``), in file order."""
    text = open(path).read()
    points = []
    for tag in re.findall(r"<point\b[^>]*>", text):
        values = {k: float(v) for k, v in re.findall(r'\b([xyz])="([^"]+)"', tag)}
        points.append([values["x"], values["y"], values["z"]])
    if len(points) < 7:
        raise ValueError(f"{path}: expected 7 picked points, found {len(points)}")
    return np.asarray(points[:7], np.float64)


def crop_sphere(landmarks_7x3: np.ndarray) -> tuple[np.ndarray, float]:
    """NoW's face region: (centre, radius) from the scan's 7 landmarks."""
    lm = np.asarray(landmarks_7x3, np.float64)
    bridge = (lm[1] + lm[2]) / 2                      # between the inner eye corners
    centre = lm[4] + 0.3 * (bridge - lm[4])          # up from the nose bottom
    radius = 1.4 * (np.linalg.norm(lm[0] - lm[3]) + np.linalg.norm(bridge - lm[4])) / 2
    return centre, float(radius)


def crop_scan(scan_vertices_Nx3: np.ndarray, landmarks_7x3: np.ndarray) -> np.ndarray:
    """The scan vertices within NoW's face sphere."""
    centre, radius = crop_sphere(landmarks_7x3)
    keep = np.linalg.norm(scan_vertices_Nx3 - centre, axis=1) <= radius
    return scan_vertices_Nx3[keep]


def _apply(scale, rotation, translation, points):
    return scale * points @ rotation.T + translation


def align_to_scan(pred_vertices_Vx3: np.ndarray, faces_Tx3: np.ndarray,
                  pred_landmarks_7x3: np.ndarray, scan_points_Nx3: np.ndarray,
                  scan_landmarks_7x3: np.ndarray, metrical: bool = False,
                  unit_scale: float = 1000.0, iterations: int = 10) -> np.ndarray:
    """The predicted vertices aligned to the (cropped) scan: landmark Procrustes, then
    closest-point refinement of the scale (non-metrical), rotation and translation.

    ``metrical``: the prediction is in metres and only rotated and translated after being
    scaled by ``unit_scale`` (mm per metre); otherwise the scale is free.
    """
    verts = np.asarray(pred_vertices_Vx3, np.float64)
    lm = np.asarray(pred_landmarks_7x3, np.float64)
    if metrical:
        verts, lm = verts * unit_scale, lm * unit_scale
    fit = fit_similarity(jnp.asarray(lm[None], jnp.float32),
                         jnp.asarray(np.asarray(scan_landmarks_7x3)[None], jnp.float32),
                         with_scale=not metrical)
    aligned = _apply(float(fit.scale[0]), np.asarray(fit.rotation[0], np.float64),
                     np.asarray(fit.translation[0], np.float64), verts)
    for _ in range(iterations):
        # Each scan point's closest surface point, then the similarity moving those surface
        # points onto the scan points: each step lowers the sum of squared distances.
        closest = closest_points_on_mesh(scan_points_Nx3, aligned, faces_Tx3)
        step = fit_similarity(jnp.asarray(closest[None], jnp.float32),
                              jnp.asarray(np.asarray(scan_points_Nx3)[None], jnp.float32),
                              with_scale=not metrical)
        aligned = _apply(float(step.scale[0]), np.asarray(step.rotation[0], np.float64),
                         np.asarray(step.translation[0], np.float64), aligned)
    return aligned


def scan_errors(scan_vertices_Nx3, scan_landmarks_7x3, pred_vertices_Vx3, faces_Tx3,
                pred_landmarks_7x3, metrical: bool = False) -> np.ndarray:
    """One image's NoW errors: each cropped scan vertex's distance (scan units, mm) to the
    aligned predicted surface."""
    cropped = crop_scan(np.asarray(scan_vertices_Nx3, np.float64), scan_landmarks_7x3)
    aligned = align_to_scan(pred_vertices_Vx3, faces_Tx3, pred_landmarks_7x3, cropped,
                            scan_landmarks_7x3, metrical)
    return point_to_mesh_distance(cropped.astype(np.float32), aligned.astype(np.float32),
                                  faces_Tx3)


def summarize(errors_per_image: list[np.ndarray]) -> dict[str, float]:
    """NoW's report: median, mean, std (mm) of all images' errors concatenated."""
    all_errors = np.concatenate([np.asarray(e, np.float64) for e in errors_per_image])
    return {"median_mm": float(np.median(all_errors)), "mean_mm": float(np.mean(all_errors)),
            "std_mm": float(np.std(all_errors)), "images": len(errors_per_image),
            "points": int(all_errors.size)}


def cumulative_error_curve(errors_per_image: list[np.ndarray], max_mm: float = 10.0,
                           bins: int = 201) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, fraction of scan points with error <= threshold), NoW's curve."""
    all_errors = np.concatenate([np.asarray(e, np.float64) for e in errors_per_image])
    thresholds = np.linspace(0.0, max_mm, bins)
    return thresholds, np.searchsorted(np.sort(all_errors), thresholds, side="right") \
        / all_errors.size
