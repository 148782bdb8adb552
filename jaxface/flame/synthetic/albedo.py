"""A PCA albedo model in the synthetic head's UV space (the stand-in for BFM's).

Every texel is mapped back to its point on the head surface (the UV layout is the surface's
(theta, phi) parameterisation, so this is analytic), and coloured by region: skin, redder lips
and cheeks, dark brows, hair on the scalp; the eyeball discs get sclera, iris and pupil. The
basis holds smooth colour variations (tone, redness, hair, lips, iris, then local blotches),
orthonormalised and with falling variance, like a PCA basis.
"""

from __future__ import annotations

import numpy as np

from jaxface.flame.synthetic.rig import orthonormal_columns
from jaxface.flame.synthetic.surface import (
    BROW_Y,
    EYE_X,
    MOUTH_Y,
    gauss,
    head_points,
    smoothstep,
)
from jaxface.flame.synthetic.topology import phi_of_u, theta_of_t

EYE_UV_CENTRES = ((0.05, 0.05), (0.15, 0.05))  # left, right eyeball discs
EYE_UV_RADIUS = 0.045
_SKIN = np.array([0.80, 0.60, 0.50])
_HAIR = np.array([0.22, 0.15, 0.10])




def texel_uv(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Texel-centre (u, v) grids (H, W); image row 0 is v = 1 (the top), as DECA samples."""
    c = (np.arange(resolution) + 0.5) / resolution
    u, v = np.meshgrid(c, c[::-1])
    return u, v


def synthetic_albedo(rng: np.random.Generator, resolution: int = 256,
                     n_components: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Returns (mean (H, W, 3) RGB in [0, 1], basis (H, W, 3, K))."""
    u, v = texel_uv(resolution)
    head = v >= 0.1
    t = 1.0 - (v - 0.1) / 0.89  # inverse of topology.head_v
    p, _ = head_points(theta_of_t(np.clip(t, 0, 1)), phi_of_u(2 * np.pi * u - np.pi))
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    ax = np.abs(x)

    lips = (gauss(x, y, 0.0, MOUTH_Y + 0.004, 0.018, 0.004)
            + gauss(x, y, 0.0, MOUTH_Y - 0.006, 0.017, 0.005)).clip(0, 1)
    cheeks = gauss(ax, y, 0.045, -0.01, 0.015, 0.015)
    brows = gauss(ax, y, EYE_X + 0.002, BROW_Y + 0.001, 0.02, 0.0035)
    hairline = 0.082 - 0.03 * smoothstep((ax - 0.03) / 0.05)
    hair = np.maximum(smoothstep((y - hairline) / 0.01),
                      smoothstep((-z - 0.02) / 0.02) * smoothstep((y + 0.03) / 0.02))
    mean = np.broadcast_to(_SKIN, u.shape + (3,)).copy()
    mean += lips[..., None] * np.array([0.02, -0.20, -0.12])
    mean += cheeks[..., None] * np.array([0.03, -0.05, -0.03])
    mean = mean * (1 - 0.7 * brows[..., None]) + 0.7 * brows[..., None] * _HAIR
    mean = mean * (1 - hair[..., None]) + hair[..., None] * _HAIR

    iris = np.zeros(u.shape)
    eye = np.zeros(u.shape, bool)
    for cu, cv in EYE_UV_CENTRES:
        rho = np.hypot(u - cu, v - cv) / EYE_UV_RADIUS  # angle from the pupil / pi
        inside = rho <= 1.0
        eye |= inside
        mean[inside] = np.array([0.92, 0.90, 0.86])
        iris_here = inside & (rho < 0.15)
        mean[iris_here] = np.array([0.35, 0.22, 0.12])
        mean[inside & (rho < 0.06)] = 0.03
        iris[iris_here] = 1.0
    used = head | eye
    mean[~used] = _SKIN

    skin = used & ~eye
    fields = [
        skin[..., None] * np.ones(3),
        skin[..., None] * np.array([1.0, -0.3, -0.6]),
        skin[..., None] * np.array([0.5, 0.4, -0.8]),
        hair[..., None] * skin[..., None] * np.array([1.0, 0.8, 0.6]),
        lips[..., None] * np.array([1.0, -0.6, -0.3]),
        iris[..., None] * np.array([-0.8, 0.0, 1.0]),
    ]
    face = np.argwhere(skin & (z > 0.02))
    while len(fields) < n_components:
        r, c = face[rng.integers(len(face))]
        bump = gauss(x, y, x[r, c], y[r, c], 0.02, 0.02) * skin
        fields.append(bump[..., None] * rng.normal(size=3))
    q = orthonormal_columns(fields)
    # Component k changes a texel's colour by about 0.08 (k+1)^-0.7 RMS over the used area.
    scale = 0.08 * (np.arange(n_components) + 1.0) ** -0.7 * np.sqrt(used.sum())
    basis = (q * scale).reshape(u.shape + (3, n_components))
    return mean.astype(np.float32), basis.astype(np.float32)
