"""Connectivity and UV layout of the synthetic head, sized exactly like FLAME.

The head is a stack of horizontal-ish vertex rings (one vertex at the top of the head, the last
ring the open neck boundary, as FLAME's), consecutive rings joined by a strip of triangles; a
closed UV sphere per eyeball. A ring may have any number of vertices: the strip between rings
of n and m vertices has n + m triangles. The lips are a slit on one ring: its interior vertices
are duplicated, the strip above uses the copies, so the mouth opens when the jaw turns.

Euler's formula fixes the counts: with the neck ring's n_neck vertices, d duplicated lip vertices
and two closed eyeballs, 2V - F = n_neck + 2d + 8 (+ boundaries of the slit); FLAME's
V = 5023, F = 9976 give n_neck + 2d = 60.
"""

from __future__ import annotations

import dataclasses

import numpy as np

N_VERTICES, N_FACES = 5023, 9976
N_NECK, N_LIP_DUPLICATES = 32, 14      # n_neck + 2 d = 60 (see above)
EYE_RINGS, EYE_SEGMENTS = 10, 16       # each eyeball: 2 + 10 * 16 vertices, 320 triangles
_HEAD_RING_VERTICES = N_VERTICES - 1 - N_LIP_DUPLICATES - 2 * (2 + EYE_RINGS * EYE_SEGMENTS)
_N_RINGS = 64
_THETA_FIRST, _THETA_LAST = np.radians(5.0), np.radians(158.0)
_PHI_FRONT_DENSITY = 0.5               # phi = u - a sin(u): the front is 1/(1-a) times denser


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """Where every head vertex sits in the (theta, phi) parameter domain, and the mesh."""

    theta: np.ndarray          # (V_head,) polar angle of each head vertex (pole first)
    phi: np.ndarray            # (V_head,) azimuth (lip copies repeat their originals)
    faces: np.ndarray          # (F_head, 3)
    uvs: np.ndarray            # (T_head, 2)
    uv_faces: np.ndarray       # (F_head, 3)
    ring_start: np.ndarray     # (R,) index of each ring's first vertex
    ring_size: np.ndarray      # (R,)
    mouth_ring: int
    lip_originals: np.ndarray  # (d,) vertices of the lower lip on the slit
    lip_copies: np.ndarray     # (d,) their upper-lip copies
    lip_corners: np.ndarray    # (2,) the slit's end vertices (shared): right (-x), left (+x)


def head_v(one_minus_t):
    """Texture v of the head's rings: the rings take v in [0.1, 0.99] (the top pole's fan
    reaches v = 1), the eyes the strip below v = 0.1."""
    return 0.1 + 0.89 * one_minus_t


def _density_warp(u: np.ndarray, lo: float, hi: float, centre: float, width: float,
                  gain: float) -> np.ndarray:
    """Maps uniform u in [0, 1] to [lo, hi], denser (by 1 + gain) around ``centre``."""
    grid = np.linspace(lo, hi, 2001)
    density = 1.0 + gain * np.exp(-0.5 * ((grid - centre) / width) ** 2)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
    return np.interp(u, cdf / cdf[-1], grid)


def theta_of_t(t: np.ndarray) -> np.ndarray:
    """Polar angle of the ring at uniform parameter t in [0, 1] (top of the head to the neck);
    rings are denser over the face."""
    return _density_warp(t, _THETA_FIRST, _THETA_LAST, np.radians(92.0), np.radians(26.0), 1.6)


def phi_of_u(u: np.ndarray) -> np.ndarray:
    """Azimuth at uniform parameter u in [-pi, pi): denser at the front."""
    return u - _PHI_FRONT_DENSITY * np.sin(u)


def ring_phi(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Azimuths of an n-vertex ring, starting at the back seam, and their uniform parameter."""
    u = -np.pi + 2.0 * np.pi * np.arange(n) / n
    return phi_of_u(u), u


def _ring_sizes(theta: np.ndarray, mouth_ring: int) -> np.ndarray:
    """Vertices per ring: following the circumference, tapering to N_NECK at the neck,
    summing exactly to the head's vertex budget, and odd on the mouth ring (no vertex on the
    midline, so the lip slit is symmetric)."""
    size = np.sin(theta) ** 0.75
    neck = np.clip((theta - np.radians(135.0)) / (theta[-1] - np.radians(135.0)), 0.0, 1.0)
    # n_r = scale * size_r, blended towards N_NECK down the neck; scale meets the budget.
    scale = (_HEAD_RING_VERTICES - N_NECK * neck.sum()) / np.sum((1.0 - neck) * size)
    n = np.maximum(np.round((1.0 - neck) * scale * size + neck * N_NECK).astype(np.int64), 8)
    n[-1] = N_NECK
    if n[mouth_ring] % 2 == 0:
        n[mouth_ring] += 1
    face_rings = [r for r in np.argsort(-size[:-1]) if r != mouth_ring]
    diff = _HEAD_RING_VERTICES - n.sum()  # absorb rounding in the widest rings
    for k in range(abs(int(diff))):
        n[face_rings[k % len(face_rings)]] += np.sign(diff)
    return n


def _strip(a: np.ndarray, phi_a: np.ndarray, b: np.ndarray, phi_b: np.ndarray,
           uv_a: tuple[np.ndarray, np.ndarray], uv_b: tuple[np.ndarray, np.ndarray]):
    """Triangles between ring a (upper) and ring b (lower), both starting at the back seam.

    Marching around both rings at once, each step advances the ring whose next vertex comes
    first in azimuth: ``len(a) + len(b)`` triangles, vectorised by sorting the steps. The
    indices ``len(ring)`` stand for the seam vertex reached again at the end, which keeps its
    geometric index but takes its second UV coordinate (u = 1). ``uv_*`` are (uv index at the
    seam start, ...) arrays of length n + 1.
    """
    na, nb = len(a), len(b)
    next_a = np.append(phi_a[1:], phi_a[0] + 2 * np.pi)
    next_b = np.append(phi_b[1:], phi_b[0] + 2 * np.pi)
    keys = np.concatenate([next_a, next_b])
    from_a = np.concatenate([np.ones(na, bool), np.zeros(nb, bool)])
    order = np.lexsort((~from_a, keys))  # ties: advance ring a first
    step_a = from_a[order]
    ia = np.cumsum(step_a)           # position on ring a after each step
    ib = np.cumsum(~step_a)
    pa, pb = ia - step_a, ib - ~step_a   # positions before the step
    # Triangles (upper-left, lower, upper-right) are counter-clockwise seen from outside.
    tri_pos = np.where(step_a[:, None], np.stack([pa, pb, ia], 1), np.stack([pa, pb, ib], 1))
    on_a = np.where(step_a[:, None], [[True, False, True]], [[True, False, False]])
    wrap_a, wrap_b = np.append(a, a[0]), np.append(b, b[0])
    geo = np.where(on_a, wrap_a[np.minimum(tri_pos, na)], wrap_b[np.minimum(tri_pos, nb)])
    uv = np.where(on_a, uv_a[np.minimum(tri_pos, na)], uv_b[np.minimum(tri_pos, nb)])
    return geo, uv


def head_layout() -> HeadLayout:
    """The head mesh: rings, the mouth slit, faces and UVs (deterministic)."""
    from jaxface.flame.synthetic.surface import MOUTH_Y, head_points

    t = np.linspace(0.0, 1.0, _N_RINGS)
    theta = theta_of_t(t)
    # Put one ring exactly where the lips meet at the front (phi = 0).
    grid = np.linspace(np.radians(90), np.radians(130), 4001)
    front_y = head_points(grid, np.zeros_like(grid))[0][:, 1]
    theta_mouth = grid[np.argmin(np.abs(front_y - MOUTH_Y))]
    mouth_ring = int(np.argmin(np.abs(theta - theta_mouth)))
    theta[mouth_ring] = theta_mouth
    sizes = _ring_sizes(theta, mouth_ring)
    starts = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]])

    v_theta, v_phi = [np.array([0.0])], [np.array([0.0])]
    uv_list = [np.zeros((0, 2))]
    ring_uv = []  # per ring: uv index for positions 0..n (n = seam again)
    v_of_t = 1.0 - t  # texture v follows the uniform ring parameter: the face gets more area
    n_uv = 0
    for r, n in enumerate(sizes):
        phi, u = ring_phi(n)
        v_theta.append(np.full(n, theta[r]))
        v_phi.append(phi)
        tex_u = np.append((u + np.pi) / (2 * np.pi), 1.0)
        uv_list.append(np.stack([tex_u, np.full(n + 1, head_v(v_of_t[r]))], 1))
        ring_uv.append(n_uv + np.arange(n + 1))
        n_uv += n + 1

    faces, uv_faces = [], []
    # Top cap: a fan around the pole vertex 0, with one pole UV per triangle (at v = 1).
    n0 = sizes[0]
    ring0 = starts[0] + np.arange(n0)
    faces.append(np.stack([np.zeros(n0, np.int64), ring0, np.roll(ring0, -1)], 1))
    pole_uv = np.stack([(np.arange(n0) + 0.5) / n0, np.ones(n0)], 1)
    uv_list.append(pole_uv)
    uv_faces.append(np.stack([n_uv + np.arange(n0), ring_uv[0][:-1], ring_uv[0][1:]], 1))
    n_uv += n0

    # The mouth slit: the d front vertices of the mouth ring nearest phi = 0 (the ring has an
    # odd size, so they are symmetric: d/2 on each side of the midline).
    phi_m, _ = ring_phi(sizes[mouth_ring])
    interior = np.sort(np.argsort(np.abs(phi_m))[:N_LIP_DUPLICATES])
    lip_originals = starts[mouth_ring] + interior
    corners = starts[mouth_ring] + np.array([interior[0] - 1, interior[-1] + 1])
    n_base = 1 + sizes.sum()
    lip_copies = n_base + np.arange(N_LIP_DUPLICATES)
    copy_of = dict(zip(lip_originals.tolist(), lip_copies.tolist(), strict=True))

    for r in range(len(sizes) - 1):
        a = starts[r] + np.arange(sizes[r])
        b = starts[r + 1] + np.arange(sizes[r + 1])
        geo, uv = _strip(a, ring_phi(sizes[r])[0], b, ring_phi(sizes[r + 1])[0],
                         ring_uv[r], ring_uv[r + 1])
        if r + 1 == mouth_ring:  # the strip above the lips uses the upper-lip copies
            geo = np.vectorize(lambda i: copy_of.get(i, i))(geo)
        faces.append(geo)
        uv_faces.append(uv)

    v_theta.append(theta[mouth_ring] * np.ones(N_LIP_DUPLICATES))
    v_phi.append(phi_m[interior])
    return HeadLayout(
        theta=np.concatenate(v_theta), phi=np.concatenate(v_phi),
        faces=np.concatenate(faces).astype(np.int64),
        uvs=np.concatenate(uv_list).astype(np.float64),
        uv_faces=np.concatenate(uv_faces).astype(np.int64),
        ring_start=starts, ring_size=sizes, mouth_ring=mouth_ring,
        lip_originals=lip_originals, lip_copies=lip_copies, lip_corners=corners)


def eyeball(centre: np.ndarray, uv_centre: tuple[float, float], uv_radius: float):
    """A closed UV sphere about ``centre`` with its front pole (the pupil) towards +z.

    Returns (vertices (2 + r s, 3), faces (2 r s, 3) local indices, uvs, uv_faces): the UV
    island is a disc, the pupil at its centre and the back pole spread over its rim.
    """
    from jaxface.flame.synthetic.surface import EYEBALL_RADIUS

    alpha = np.linspace(0, np.pi, EYE_RINGS + 2)[1:-1]       # angle from the front pole
    beta = 2 * np.pi * np.arange(EYE_SEGMENTS) / EYE_SEGMENTS
    a, b = np.meshgrid(alpha, beta, indexing="ij")
    ring_dirs = np.stack([np.sin(a) * np.cos(b), np.sin(a) * np.sin(b), np.cos(a)], -1)
    dirs = np.concatenate([[[0, 0, 1.0]], ring_dirs.reshape(-1, 3), [[0, 0, -1.0]]])
    verts = centre + EYEBALL_RADIUS * dirs
    s, last = EYE_SEGMENTS, 1 + EYE_RINGS * EYE_SEGMENTS
    ring = lambda i: 1 + i * s + np.arange(s)  # noqa: E731
    faces = [np.stack([np.zeros(s, np.int64), ring(0), np.roll(ring(0), -1)], 1)]
    for i in range(EYE_RINGS - 1):
        top, bot = ring(i), ring(i + 1)
        faces += [np.stack([top, bot, np.roll(bot, -1)], 1),
                  np.stack([top, np.roll(bot, -1), np.roll(top, -1)], 1)]
    rim = ring(EYE_RINGS - 1)
    faces.append(np.stack([np.full(s, last), np.roll(rim, -1), rim], 1))
    faces = np.concatenate(faces)
    # Disc UVs: radius follows the angle from the pupil; the back pole gets one UV per triangle.
    rad = uv_radius * np.concatenate([[0.0], (a / np.pi).reshape(-1)])
    ang = np.concatenate([[0.0], b.reshape(-1)])
    uvs = np.stack([uv_centre[0] + rad * np.cos(ang), uv_centre[1] + rad * np.sin(ang)], 1)
    back_ang = 2 * np.pi * (np.arange(s) + 0.5) / s
    back = np.stack([uv_centre[0] + uv_radius * np.cos(back_ang),
                     uv_centre[1] + uv_radius * np.sin(back_ang)], 1)
    uv_faces = faces.copy()
    uv_faces[-s:, 0] = last + np.arange(s)
    return verts, faces, np.concatenate([uvs, back]), uv_faces
