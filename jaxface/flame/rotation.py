"""Axis-angle rotations with gradients that stay finite at the zero rotation."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Below this squared angle the Taylor series is used: its next term is O(theta^6) ~ 1e-24.
_SMALL_ANGLE2 = 1e-8


def skew(v_Nx3: jax.Array) -> jax.Array:
    """(..., 3) -> (..., 3, 3) cross-product matrices: skew(a) @ b == cross(a, b)."""
    x, y, z = v_Nx3[..., 0], v_Nx3[..., 1], v_Nx3[..., 2]
    zero = jnp.zeros_like(x)
    return jnp.stack([
        jnp.stack([zero, -z, y], -1),
        jnp.stack([z, zero, -x], -1),
        jnp.stack([-y, x, zero], -1),
    ], -2)


def rodrigues(rotvec_Nx3: jax.Array) -> jax.Array:
    """Axis-angle vectors (..., 3) -> rotation matrices (..., 3, 3).

    R = I + a(theta) K + b(theta) K^2 with K = skew(r), a = sin(theta)/theta and
    b = (1 - cos(theta))/theta^2 = 2 sin^2(theta/2)/theta^2 (the stable form). Near theta = 0
    both coefficients switch to their Taylor series, and the ``where`` keeps the other branch's
    division away from zero, so the value and every derivative are exact and finite there
    (dR/dr at r = 0 is skew(dr)).
    """
    theta2 = jnp.sum(rotvec_Nx3 * rotvec_Nx3, axis=-1)
    small = theta2 < _SMALL_ANGLE2
    theta2_safe = jnp.where(small, 1.0, theta2)
    theta = jnp.sqrt(theta2_safe)
    a = jnp.where(small, 1.0 - theta2 / 6.0 + theta2 * theta2 / 120.0, jnp.sin(theta) / theta)
    half_sin = jnp.sin(0.5 * theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0 + theta2 * theta2 / 720.0,
                  2.0 * half_sin * half_sin / theta2_safe)
    k = skew(rotvec_Nx3)
    eye = jnp.eye(3, dtype=rotvec_Nx3.dtype)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def yaw_degrees(rot_Nx3x3: jax.Array) -> jax.Array:
    """Rotation about the vertical (y) axis in degrees, as FLAME's/DECA's ``rot_mat_to_euler``.

    The angle is asin(-R[2, 0]) written as atan2(-R[2, 0], hypot(R[0, 0], R[1, 0])), which is
    exact for any rotation whose other Euler angles are within (-90, 90) degrees.
    """
    sy = jnp.sqrt(rot_Nx3x3[..., 0, 0] ** 2 + rot_Nx3x3[..., 1, 0] ** 2)
    return jnp.degrees(jnp.arctan2(-rot_Nx3x3[..., 2, 0], sy))
