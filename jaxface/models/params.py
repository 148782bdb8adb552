"""Naming the coarse code: DECA's parameter groups and their conversion to FLAME inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Order of the groups in the code vector (DECA's).
PARAM_GROUPS = ("shape", "tex", "exp", "pose", "cam", "light")


def param_sizes(n_shape: int = 100, n_tex: int = 50, n_exp: int = 50) -> dict[str, int]:
    """Lengths of the groups: pose = global rotation 3 + jaw 3 (axis-angle), camera = (s, tx,
    ty), light = 9 SH coefficients x 3 colours."""
    return {"shape": n_shape, "tex": n_tex, "exp": n_exp, "pose": 6, "cam": 3, "light": 27}


def decode_params(code_BxP: jax.Array, sizes: dict[str, int]) -> dict[str, jax.Array]:
    """Splits the code into named groups; ``light`` comes out as (B, 9, 3)."""
    total = sum(sizes[g] for g in PARAM_GROUPS)
    if code_BxP.shape[-1] != total:
        raise ValueError(f"code has {code_BxP.shape[-1]} values, the groups {sizes} need {total}")
    out, start = {}, 0
    for group in PARAM_GROUPS:
        out[group] = code_BxP[..., start:start + sizes[group]]
        start += sizes[group]
    out["light"] = out["light"].reshape(out["light"].shape[:-1] + (9, 3))
    return out


def flame_pose(pose_Bx6: jax.Array) -> jax.Array:
    """FLAME's full pose (B, 15) [global, neck, jaw, eye L, eye R] from (global, jaw); the
    neck and eyes stay at rest, as DECA regresses them."""
    zeros = jnp.zeros(pose_Bx6.shape[:-1] + (3,), pose_Bx6.dtype)
    return jnp.concatenate([pose_Bx6[..., :3], zeros, pose_Bx6[..., 3:], zeros, zeros], -1)


def camera_from_code(cam_Bx3: jax.Array, base_scale: float) -> jax.Array:
    """Weak-perspective (s, tx, ty) from the code's raw values: s = base_scale exp(0.1 raw_s)
    (positive, near the data's typical scale at initialisation), t = 0.1 raw_t."""
    return jnp.concatenate([base_scale * jnp.exp(0.1 * cam_Bx3[..., :1]),
                            0.1 * cam_Bx3[..., 1:]], -1)


def light_from_code(light_Bx9x3: jax.Array, ambient: float = 3.0) -> jax.Array:
    """SH coefficients from the code: an ambient term (white light at initialisation) plus
    0.1 x the raw values."""
    return 0.1 * light_Bx9x3 + jnp.zeros_like(light_Bx9x3).at[..., 0, :].set(ambient)


def code_of_camera(cam_Bx3: jax.Array, base_scale: float) -> jax.Array:
    """The inverse of :func:`camera_from_code`: raw code values of a camera (s > 0, tx, ty)."""
    return jnp.concatenate([10.0 * jnp.log(cam_Bx3[..., :1] / base_scale),
                            10.0 * cam_Bx3[..., 1:]], -1)


def code_of_light(light_Bx9x3: jax.Array, ambient: float = 3.0) -> jax.Array:
    """The inverse of :func:`light_from_code`."""
    return 10.0 * (light_Bx9x3 - jnp.zeros_like(light_Bx9x3).at[..., 0, :].set(ambient))
