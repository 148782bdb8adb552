"""The synthetic head's rest surface as a function of two angles.

Frame (FLAME's): metres, y up, the face looking along +z, x towards the subject's left. The
head is star-shaped about the origin: a point is r(d) * d for the unit direction
d(theta, phi) = (sin theta sin phi, cos theta, sin theta cos phi), theta the polar angle from the
top of the head and phi the azimuth from the front (phi = +90 degrees is the subject's left).
r is a smooth union of a skull/face ellipsoid and a neck cylinder, plus Gaussian facial
features (nose, eye sockets, brows, lips, cheekbones, chin, ears) placed with the same layout
constants as the 68 landmarks, so that landmarks land on the features they name.
"""

from __future__ import annotations

import numpy as np

# Face layout (metres, front view: x to the subject's left, y up).
EYE_X, EYE_Y = 0.032, 0.030          # eye centres
EYE_HALF_WIDTH, EYE_HALF_HEIGHT = 0.0135, 0.0050
BROW_Y = 0.050
NOSE_TIP_Y, NOSE_BASE_Y = 0.000, -0.010
MOUTH_Y = -0.034                     # the lips meet here (the mouth slit's ring)
CHIN_Y = -0.082
EYEBALL_RADIUS = 0.0120

# Skull ellipsoid semi-axes, chosen per octant (continuous and C1 across the planes).
_AX, _AX_LOW = 0.078, 0.066          # half width, upper / lower face
_AY_UP, _AY_DOWN = 0.118, 0.092      # top of the head / chin
_AZ_FRONT, _AZ_BACK = 0.092, 0.104
_NECK_RADIUS, _NECK_Z = 0.054, -0.018


def directions(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit directions (..., 3) for polar angle ``theta`` and azimuth ``phi``."""
    st = np.sin(theta)
    return np.stack([st * np.sin(phi), np.cos(theta), st * np.cos(phi)], -1)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, the C1 cubic 3x^2 - 2x^3 between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def gauss(x, y, cx, cy, sx, sy):
    """An axis-aligned 2-D Gaussian bump of height 1 at (cx, cy)."""
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def _ellipsoid_radius(d: np.ndarray) -> np.ndarray:
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    lower = smoothstep((0.1 - dy) / 0.6)       # the lower face is narrower than the skull
    ax = _AX + (_AX_LOW - _AX) * lower
    ay = np.where(dy > 0, _AY_UP, _AY_DOWN)
    az = np.where(dz > 0, _AZ_FRONT, _AZ_BACK)
    return 1.0 / np.sqrt((dx / ax) ** 2 + (dy / ay) ** 2 + (dz / az) ** 2)


def _neck_radius(d: np.ndarray) -> np.ndarray:
    """Distance along d to the vertical cylinder of the neck (lower hemisphere only)."""
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    a = np.maximum(dx * dx + dz * dz, 1e-6)
    bz = dz * _NECK_Z
    r = (bz + np.sqrt(bz * bz - a * (_NECK_Z**2 - _NECK_RADIUS**2))) / a
    return r * smoothstep(-dy / 0.35)


def _features(p: np.ndarray) -> np.ndarray:
    """Radial offsets of the facial features at base points ``p`` (..., 3)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    front = smoothstep(z / 0.05)
    ax = np.abs(x)
    nose = 0.020 * gauss(x, y, 0.0, NOSE_TIP_Y, 0.0075, 0.010)
    nose += 0.010 * gauss(x, y, 0.0, 0.018, 0.0055, 0.016)             # bridge
    nose += 0.005 * gauss(ax, y, 0.011, NOSE_BASE_Y + 0.002, 0.005, 0.005)  # alae
    sockets = -0.010 * gauss(ax, y, EYE_X, EYE_Y, 0.014, 0.009)
    brows = 0.005 * gauss(ax, y, EYE_X, BROW_Y, 0.022, 0.006)
    lips = 0.007 * gauss(x, y, 0.0, MOUTH_Y + 0.004, 0.017, 0.004)
    lips += 0.008 * gauss(x, y, 0.0, MOUTH_Y - 0.006, 0.016, 0.005)
    philtrum = 0.003 * gauss(x, y, 0.0, (MOUTH_Y + NOSE_BASE_Y) / 2, 0.012, 0.008)
    cheekbones = 0.006 * gauss(ax, y, 0.052, 0.005, 0.016, 0.014)
    chin = 0.007 * gauss(x, y, 0.0, CHIN_Y + 0.012, 0.016, 0.012)
    face = front * (nose + sockets + brows + lips + philtrum + cheekbones + chin)
    return face + 0.014 * ear_weight(p)


def ear_weight(p: np.ndarray) -> np.ndarray:
    """How much of an ear bump (0..1) sits at base points ``p`` (..., 3)."""
    side = smoothstep((np.abs(p[..., 0]) - 0.06) / 0.01)
    return side * gauss(p[..., 2], p[..., 1], -0.012, 0.018, 0.012, 0.022)


def head_points(theta: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surface points (..., 3) and whether each lies on the head rather than the neck."""
    d = directions(theta, phi)
    r_skull, r_neck = _ellipsoid_radius(d), _neck_radius(d)
    k = 250.0  # sharpness of the smooth maximum (1/k ~ 4 mm blend)
    r = np.logaddexp(k * r_skull, k * r_neck) / k
    base = r[..., None] * d
    r = r + _features(base)
    return r[..., None] * d, r_skull >= r_neck


def eye_centres() -> np.ndarray:
    """(2, 3) eyeball centres, left (+x) then right, slightly behind the socket surface."""
    out = []
    for sx in (1.0, -1.0):
        x, y = sx * EYE_X, EYE_Y
        theta = np.arccos(np.clip(y / 0.095, -1, 1))
        phi = np.arcsin(np.clip(x / (0.095 * np.sin(theta)), -1, 1))
        # Walk the ray from the front until the surface point projects onto (x, y).
        for _ in range(20):
            p, _ = head_points(theta, phi)
            theta += (p[1] - y) * 4.0
            phi += (x - p[0]) * 8.0
        out.append([x, y, p[2] - EYEBALL_RADIUS + 0.0035])
    return np.asarray(out)
