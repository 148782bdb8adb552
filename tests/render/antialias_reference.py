"""A plain float64 NumPy antialias for the tests, one pixel pair at a time, from the contract:

for each right / down neighbour pair with different triangle ids, take the nearer triangle (or
the only one), stand at the centre of the pixel it covers and walk towards the other centre;
find the edge the walk leaves the triangle by (the farthest crossing of the pair's line); if it
is a silhouette edge (the neighbour across it, if any, lies on the same side in screen space),
steeper across the pair than along it, and crosses at t in (-1/16, 1 + 1/16), clamp t to [0, 1]
and move |0.5 - t| of the far pixel's colour into the pixel on whose half the crossing lies.
"""

from __future__ import annotations

import numpy as np


def opposite_vertices(tri: np.ndarray) -> np.ndarray:
    """(T, 3): the vertex across edge k (corners k+1, k+2) in the one other triangle on it,
    or -1."""
    on_edge: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for t, (a, b, c) in enumerate(tri.tolist()):
        if len({a, b, c}) < 3:
            continue
        for k, (p, q) in enumerate([(b, c), (c, a), (a, b)]):
            on_edge.setdefault((min(p, q), max(p, q)), []).append((t, k))
    out = np.full(tri.shape, -1)
    for users in on_edge.values():
        if len(users) == 2:
            (t0, k0), (t1, k1) = users
            out[t0, k0], out[t1, k1] = tri[t1, k1], tri[t0, k0]
    return out


def _cross(o, p, q):
    return (p[0] - o[0]) * (q[1] - o[1]) - (q[0] - o[0]) * (p[1] - o[1])


def antialias_reference(color, rast, pos_Vx4, tri):
    """One image: color (H, W, C), rast (H, W, 4), pos (V, 4) -> (H, W, C) float64."""
    height, width, _ = color.shape
    color = color.astype(np.float64)
    out = color.copy()
    xy = (pos_Vx4[:, :2] / pos_Vx4[:, 3:4] + 1) * [width / 2, height / 2]
    opp = opposite_vertices(tri)
    for i in range(height):
        for j in range(width):
            for di, dj in [(0, 1), (1, 0)]:
                i1, j1 = i + di, j + dj
                if i1 >= height or j1 >= width:
                    continue
                id0, id1 = int(rast[i, j, 3]), int(rast[i1, j1, 3])
                if id0 == id1:
                    continue
                use0 = id0 > 0 and (id1 == 0 or rast[i, j, 2] < rast[i1, j1, 2])
                t_id = (id0 if use0 else id1) - 1
                centre = np.array([j + 0.5, i + 0.5]) if use0 else np.array([j1 + 0.5, i1 + 0.5])
                towards = np.array([dj, di]) * (1 if use0 else -1)
                corners = xy[tri[t_id]]
                own = _cross(*corners)
                best, best_k = -np.inf, None
                for k in range(3):
                    p, q = corners[(k + 1) % 3] - centre, corners[(k + 2) % 3] - centre
                    # along: coordinate towards the other pixel; across: perpendicular to it.
                    pa, qa = p @ towards, q @ towards
                    pc, qc = (p[1], q[1]) if dj else (p[0], q[0])
                    if np.signbit(pc) == np.signbit(qc):
                        continue
                    t = pa + (qa - pa) * (0 - pc) / (qc - pc)
                    if t > best:
                        best, best_k = t, k
                if best_k is None:
                    continue
                k = best_k
                wing = corners.copy()
                if opp[t_id, k] >= 0:
                    wing[k] = xy[opp[t_id, k]]
                silhouette = np.signbit(_cross(*wing)) == np.signbit(own)
                p, q = corners[(k + 1) % 3], corners[(k + 2) % 3]
                along_axis, across_axis = (0, 1) if dj else (1, 0)
                steep = abs(q[across_axis] - p[across_axis]) >= abs(q[along_axis] - p[along_axis])
                if not (silhouette and steep and -1 / 16 < best < 1 + 1 / 16):
                    continue
                t = min(max(best, 0.0), 1.0)
                far = color[i1, j1] if use0 else color[i, j]
                near = color[i, j] if use0 else color[i1, j1]
                if t < 0.5:   # crossing in the examined pixel's half: it takes the far colour
                    target = (i, j) if use0 else (i1, j1)
                    out[target] += (0.5 - t) * (far - near)
                else:         # crossing in the far pixel's half: it takes the near colour
                    target = (i1, j1) if use0 else (i, j)
                    out[target] += (t - 0.5) * (near - far)
    return out
