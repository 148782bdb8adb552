"""Naming the coarse code: DECA's parameter groups and their conversion to FLAME inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.geometry.camera import cam_from_deca

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


# How the code's camera and light values become a camera and SH coefficients.
# "jaxface": s = base_scale exp(0.1 raw_s), t = 0.1 raw_t, light = 0.1 raw + ambient (a
# well-conditioned start for training from scratch). "deca": DECA's raw outputs, its
# projection s (X + t) and its light as is (what DECA's and EMOCA's trained weights produce).
CODE_CONVENTIONS = ("jaxface", "deca")


def _check_convention(convention: str) -> None:
    if convention not in CODE_CONVENTIONS:
        raise ValueError(f"model.code_convention must be one of {CODE_CONVENTIONS}, got "
                         f"{convention!r}")


def camera_from_code(cam_Bx3: jax.Array, base_scale: float, convention: str = "jaxface"
                     ) -> jax.Array:
    """Weak-perspective (s, tx, ty) of :func:`~jaxface.geometry.camera.weak_perspective` from
    the code's raw values. "jaxface": s = base_scale exp(0.1 raw_s) (positive, near the data's
    typical scale at initialisation), t = 0.1 raw_t; "deca": DECA's (s, t') with its
    projection s (X + t'), i.e. t = s t' (``base_scale`` unused)."""
    _check_convention(convention)
    if convention == "deca":
        return cam_from_deca(cam_Bx3)
    return jnp.concatenate([base_scale * jnp.exp(0.1 * cam_Bx3[..., :1]),
                            0.1 * cam_Bx3[..., 1:]], -1)


def light_from_code(light_Bx9x3: jax.Array, ambient: float = 3.0, convention: str = "jaxface"
                    ) -> jax.Array:
    """SH coefficients from the code: "jaxface": an ambient term (white light at
    initialisation) plus 0.1 x the raw values; "deca": the raw values."""
    _check_convention(convention)
    if convention == "deca":
        return light_Bx9x3
    return 0.1 * light_Bx9x3 + jnp.zeros_like(light_Bx9x3).at[..., 0, :].set(ambient)


def code_of_camera(cam_Bx3: jax.Array, base_scale: float, convention: str = "jaxface"
                   ) -> jax.Array:
    """The inverse of :func:`camera_from_code`: raw code values of a camera (s > 0, tx, ty)."""
    _check_convention(convention)
    if convention == "deca":
        return jnp.concatenate([cam_Bx3[..., :1], cam_Bx3[..., 1:] / cam_Bx3[..., :1]], -1)
    return jnp.concatenate([10.0 * jnp.log(cam_Bx3[..., :1] / base_scale),
                            10.0 * cam_Bx3[..., 1:]], -1)


def code_of_light(light_Bx9x3: jax.Array, ambient: float = 3.0, convention: str = "jaxface"
                  ) -> jax.Array:
    """The inverse of :func:`light_from_code`."""
    _check_convention(convention)
    if convention == "deca":
        return light_Bx9x3
    return 10.0 * (light_Bx9x3 - jnp.zeros_like(light_Bx9x3).at[..., 0, :].set(ambient))


def code_of_outputs(out: dict, base_scale: float, convention: str = "jaxface") -> dict:
    """The coarse code's groups of decoded outputs (shape, exp, pose, tex as they are; the
    camera and light back in the code's raw units): what :func:`camera_from_code` and
    :func:`light_from_code` turn back into ``out``'s camera and light."""
    return {"shape": out["shape"], "exp": out["exp"], "pose": out["pose"], "tex": out["tex"],
            "cam": code_of_camera(out["cam"], base_scale, convention),
            "light": code_of_light(out["light"], convention=convention)}


# EMOCA's expression encoder: what its output holds after the expression coefficients (its
# exp_deca_jaw_pose / exp_deca_global_pose settings); these replace E_c's values.
EXPRESSION_ENCODER_POSE = {"exp": 0, "exp_jaw": 3, "exp_global": 3, "exp_global_jaw": 6}


def expression_code_size(mode: str, n_exp: int) -> int:
    """Length of the expression encoder's output for ``model.expression_encoder``."""
    if mode not in EXPRESSION_ENCODER_POSE:
        raise ValueError(f"model.expression_encoder must be 'none' or one of "
                         f"{tuple(EXPRESSION_ENCODER_POSE)}, got {mode!r}")
    return n_exp + EXPRESSION_ENCODER_POSE[mode]


def with_expression_code(p: dict[str, jax.Array], code_BxK: jax.Array, mode: str
                         ) -> dict[str, jax.Array]:
    """EMOCA's override: the expression (and, per ``mode``, the jaw and/or global rotation)
    from the expression encoder's ``code``, the rest of E_c's decoded groups ``p`` kept."""
    n_exp = p["exp"].shape[-1]
    if code_BxK.shape[-1] != expression_code_size(mode, n_exp):
        raise ValueError(f"the expression code has {code_BxK.shape[-1]} values, mode {mode!r} "
                         f"needs {expression_code_size(mode, n_exp)}")
    pose = code_BxK[..., n_exp:]
    global_rot, jaw = p["pose"][..., :3], p["pose"][..., 3:]
    if mode == "exp_jaw":
        jaw = pose
    elif mode == "exp_global":
        global_rot = pose
    elif mode == "exp_global_jaw":
        global_rot, jaw = pose[..., :3], pose[..., 3:]
    return p | {"exp": code_BxK[..., :n_exp],
                "pose": jnp.concatenate([global_rot, jaw], -1)}
