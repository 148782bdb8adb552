"""FLAME's forward pass: M(beta, theta, psi) = W(T_P(beta, theta, psi), J(beta), theta, weights)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.flame import lbs
from jaxface.flame.landmarks import barycentric_points, contour_bin
from jaxface.flame.model import NECK, FlameModel, FlameOutput
from jaxface.flame.rotation import rodrigues


def neck_chain(parents) -> list[int]:
    """The neck joint and its ancestors up to the root (the chain that sets the head's yaw)."""
    chain, j = [], NECK
    while j != -1:
        chain.append(j)
        j = parents[j]
    return chain


def forward(model: FlameModel, shape_BxS: jax.Array, expression_BxE: jax.Array,
            pose_Bx15: jax.Array) -> FlameOutput:
    """Poses the FLAME mesh. Batched, jit-able and differentiable in every input.

    Args:
      model: the face model (its float arrays are cast to the inputs' dtype, so float64 inputs
        under ``jax_enable_x64`` give a float64 result).
      shape_BxS: identity coefficients beta; S may be at most ``model.n_shape`` (missing
        trailing coefficients are zero).
      expression_BxE: expression coefficients psi, E at most ``model.n_expression``.
      pose_Bx15: axis-angle rotations [global, neck, jaw, eye left, eye right] (3 values each,
        one per joint of ``model.parents``).
    """
    dtype = jnp.result_type(shape_BxS, expression_BxE, pose_Bx15, jnp.float32)
    b = shape_BxS.shape[0]
    n_joints = len(model.parents)
    if shape_BxS.shape[-1] > model.n_shape or expression_BxE.shape[-1] > model.n_expression:
        raise ValueError(
            f"got {shape_BxS.shape[-1]} shape / {expression_BxE.shape[-1]} expression "
            f"coefficients, the model has {model.n_shape} / {model.n_expression}")
    if pose_Bx15.shape != (b, 3 * n_joints):
        raise ValueError(f"pose must be (B, {3 * n_joints}) axis-angle, got {pose_Bx15.shape}")
    cast = lambda a: a.astype(dtype)  # noqa: E731
    shapedirs = cast(model.shapedirs[: shape_BxS.shape[-1]])
    exprdirs = cast(model.exprdirs[: expression_BxE.shape[-1]])

    v_shaped = cast(model.v_template) + lbs.blend_shapes(shape_BxS.astype(dtype), shapedirs)
    v_shaped = v_shaped + lbs.blend_shapes(expression_BxE.astype(dtype), exprdirs)
    joints_rest = lbs.regress_joints(cast(model.j_regressor), v_shaped)

    rot = rodrigues(pose_Bx15.astype(dtype).reshape(b, n_joints, 3))
    v_posed = v_shaped + lbs.pose_offsets(rot, cast(model.posedirs))
    joints, skin_mats = lbs.world_from_joint(rot, joints_rest, model.parents)
    verts = lbs.skin(v_posed, skin_mats, cast(model.lbs_weights))

    bins = contour_bin(rot[:, neck_chain(model.parents)])
    dyn_faces, dyn_bary = model.dynamic_lmk_faces[bins], cast(model.dynamic_lmk_bary)[bins]
    lmk_faces = jnp.concatenate(
        [dyn_faces, jnp.broadcast_to(model.static_lmk_faces, (b, 51))], axis=1)
    lmk_bary = jnp.concatenate(
        [dyn_bary, jnp.broadcast_to(cast(model.static_lmk_bary), (b, 51, 3))], axis=1)
    landmarks = barycentric_points(verts, model.faces, lmk_faces, lmk_bary)
    static = barycentric_points(verts, model.faces, jnp.broadcast_to(model.full_lmk_faces, (b, 68)),
                                jnp.broadcast_to(cast(model.full_lmk_bary), (b, 68, 3)))
    return FlameOutput(vertices=verts, joints=joints, landmarks3d=landmarks,
                       landmarks3d_static=static)
