"""A brute-force float64 rasterizer for the tests: every pixel against every triangle.

For pixel centre (px, py) the perspective-correct barycentrics solve the 3x3 system
sum_i l_i (x_i - px w_i) = 0, sum_i l_i (y_i - py w_i) = 0, sum_i l_i = 1; the pixel is covered
when every l_i >= 0, the point's w = l.w > 0 and -1 <= z/w <= 1; the nearest z/w wins, ties to
the lower id. Also returns, per pixel, how close the decision was (for excluding pixels whose
centre lies on an edge or where two surfaces meet).
"""

from __future__ import annotations

import numpy as np


def rasterize_reference(pos_Vx4: np.ndarray, tri: np.ndarray, height: int, width: int):
    """-> (rast (H, W, 4), margin (H, W)) for one image, float64."""
    px = (np.arange(width) + 0.5) / width * 2 - 1
    py = (np.arange(height) + 0.5) / height * 2 - 1
    gx, gy = np.meshgrid(px, py)
    n_pix = height * width
    best_z = np.full(n_pix, np.inf)
    second_z = np.full(n_pix, np.inf)
    best = np.full(n_pix, -1)
    bary = np.zeros((n_pix, 3))
    edge_margin = np.full(n_pix, np.inf)
    for t, corners in enumerate(tri):
        p = pos_Vx4[corners].astype(np.float64)             # (3, 4)
        mats = np.zeros((n_pix, 3, 3))
        mats[:, 0] = p[None, :, 0] - gx.reshape(-1, 1) * p[None, :, 3]
        mats[:, 1] = p[None, :, 1] - gy.reshape(-1, 1) * p[None, :, 3]
        mats[:, 2] = 1.0
        ok = np.abs(np.linalg.det(mats)) > 1e-12
        lam = np.zeros((n_pix, 3))
        rhs = np.broadcast_to([0.0, 0.0, 1.0], (ok.sum(), 3))[..., None]
        lam[ok] = np.linalg.solve(mats[ok], rhs)[..., 0]
        w = lam @ p[:, 3]
        zw = (lam @ p[:, 2]) / np.where(w == 0, 1, w)
        covered = ok & np.all(lam >= 0, axis=1) & (w > 0) & (zw >= -1) & (zw <= 1)
        # |min l| ~ 0 exactly when the centre lies on the triangle's boundary.
        near = ok & (w > 0)
        edge_margin = np.where(near, np.minimum(edge_margin, np.abs(np.min(lam, axis=1))),
                               edge_margin)
        z = np.where(covered, zw, np.inf)
        nearer = z < best_z
        second_z = np.where(nearer, best_z, np.minimum(second_z, z))
        best_z = np.where(nearer, z, best_z)
        best = np.where(nearer, t, best)
        bary = np.where(nearer[:, None], lam, bary)
    rast = np.zeros((n_pix, 4))
    hit = best >= 0
    rast[hit, 0], rast[hit, 1] = bary[hit, 0], bary[hit, 1]
    rast[hit, 2], rast[hit, 3] = best_z[hit], best[hit] + 1
    gap = np.full(n_pix, np.inf)
    two = np.isfinite(second_z)
    gap[two] = second_z[two] - best_z[two]
    margin = np.minimum(edge_margin, gap)
    return rast.reshape(height, width, 4), margin.reshape(height, width)
