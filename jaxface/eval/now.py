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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.eval.point_to_mesh import closest_points_on_mesh, triangle_grids
from jaxface.geometry.alignment import fit_similarity


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


def _fit(source_Nx3: np.ndarray, target_Nx3: np.ndarray, with_scale: bool):
    """Umeyama in float64 -> (scale, rotation, translation): target ~ s R source + t."""
    with jax.enable_x64(True):
        fit = fit_similarity(jnp.asarray(source_Nx3, jnp.float64)[None],
                             jnp.asarray(target_Nx3, jnp.float64)[None],
                             with_scale=with_scale)
        return (float(fit.scale[0]), np.asarray(fit.rotation[0], np.float64),
                np.asarray(fit.translation[0], np.float64))


class ScanFit(NamedTuple):
    """The predicted mesh placed on a scan: scan ~ scale * rotation @ mesh + translation,
    and each scan point's distance to the placed surface (scan units)."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    distances: np.ndarray

    def apply(self, points_Nx3: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(points_Nx3, np.float64) @ self.rotation.T \
            + self.translation


def fit_to_scan(pred_vertices_Vx3: np.ndarray, faces_Tx3: np.ndarray,
                pred_landmarks_7x3: np.ndarray, scan_points_Nx3: np.ndarray,
                scan_landmarks_7x3: np.ndarray, metrical: bool = False,
                unit_scale: float = 1000.0, iterations: int = 20,
                tolerance: float = 1e-4, refine_points: int | None = 4096) -> ScanFit:
    """Places the prediction on the (cropped) scan: landmark Procrustes, then closest-point
    refinement of the scale (non-metrical), rotation and translation until the mean squared
    scan-to-mesh distance improves by less than ``tolerance`` (relative).

    ``metrical``: the prediction is in metres, scaled by ``unit_scale`` (mm per metre) and
    then only rotated and translated; otherwise the scale is free. The scan points are
    moved into the mesh's frame instead of the mesh onto them, so the mesh's search grids
    are built once. The refinement uses a fixed random subset of ``refine_points`` scan
    points (None: all; the least-squares fit of thousands of points moves by far less than
    the errors measured), the reported distances every point.
    """
    verts = np.asarray(pred_vertices_Vx3, np.float64)
    lm = np.asarray(pred_landmarks_7x3, np.float64)
    if metrical:
        verts, lm = verts * unit_scale, lm * unit_scale
    scan = np.asarray(scan_points_Nx3, np.float64)
    faces = np.asarray(faces_Tx3)
    grids = triangle_grids(verts[faces])
    verts32 = verts.astype(np.float32)
    scale, rot, shift = _fit(lm, scan_landmarks_7x3, not metrical)
    subset = scan
    if refine_points is not None and len(scan) > refine_points:
        subset = scan[np.random.default_rng(0).choice(len(scan), refine_points, replace=False)]

    def place(points, scale, rot, shift):
        local = (points - shift) @ rot / scale              # scan points in the mesh frame
        closest, dist = closest_points_on_mesh(local.astype(np.float32), verts32, faces,
                                               return_distances=True, grids=grids)
        return ScanFit(scale, rot, shift, scale * dist.astype(np.float64)), closest

    best = None
    for _ in range(iterations + 1):
        fit, closest = place(subset, scale, rot, shift)
        error = float(np.mean(fit.distances ** 2))
        if best is not None and error > best[0]:
            break                               # rounding noise: keep the better one
        converged = best is not None and best[0] - error <= tolerance * best[0]
        best = (error, fit)
        if converged:
            break
        # The similarity moving the current closest surface points onto the scan points:
        # each step lowers the sum of squared distances (ICP).
        s2, r2, t2 = _fit(fit.apply(closest), subset, not metrical)
        scale, rot, shift = s2 * scale, r2 @ rot, s2 * r2 @ shift + t2
    fit = best[1]
    if subset is not scan:
        fit, _ = place(scan, fit.scale, fit.rotation, fit.translation)
    if metrical:   # report the transform of the metre-unit mesh
        fit = fit._replace(scale=fit.scale * unit_scale)
    return fit


def align_to_scan(pred_vertices_Vx3, faces_Tx3, pred_landmarks_7x3, scan_points_Nx3,
                  scan_landmarks_7x3, metrical: bool = False, unit_scale: float = 1000.0
                  ) -> np.ndarray:
    """The predicted vertices placed on the scan by :func:`fit_to_scan`."""
    fit = fit_to_scan(pred_vertices_Vx3, faces_Tx3, pred_landmarks_7x3, scan_points_Nx3,
                      scan_landmarks_7x3, metrical, unit_scale)
    return fit.apply(pred_vertices_Vx3)


def scan_errors(scan_vertices_Nx3, scan_landmarks_7x3, pred_vertices_Vx3, faces_Tx3,
                pred_landmarks_7x3, metrical: bool = False) -> np.ndarray:
    """One image's NoW errors: each cropped scan vertex's distance (scan units, mm) to the
    aligned predicted surface."""
    cropped = crop_scan(np.asarray(scan_vertices_Nx3, np.float64), scan_landmarks_7x3)
    return fit_to_scan(pred_vertices_Vx3, faces_Tx3, pred_landmarks_7x3, cropped,
                       scan_landmarks_7x3, metrical).distances


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
