"""Linear blend skinning, as pure functions of explicit arrays (SMPL/FLAME formulation)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def blend_shapes(coeffs_BxK: jax.Array, dirs_Vx3xK: jax.Array) -> jax.Array:
    """Linear offsets sum_k coeffs[b, k] * dirs[:, :, k] -> (B, V, 3)."""
    return jnp.einsum("bk,vck->bvc", coeffs_BxK, dirs_Vx3xK)


def pose_feature(rot_BxJx3x3: jax.Array) -> jax.Array:
    """(R_j - I) of the non-root joints, flattened joint-major then row-major -> (B, 9*(J-1))."""
    b = rot_BxJx3x3.shape[0]
    eye = jnp.eye(3, dtype=rot_BxJx3x3.dtype)
    return (rot_BxJx3x3[:, 1:] - eye).reshape(b, -1)


def pose_offsets(rot_BxJx3x3: jax.Array, posedirs_Vx3xP: jax.Array) -> jax.Array:
    """Pose-corrective offsets -> (B, V, 3)."""
    return blend_shapes(pose_feature(rot_BxJx3x3), posedirs_Vx3xP)


def regress_joints(j_regressor_JxV: jax.Array, verts_BxVx3: jax.Array) -> jax.Array:
    """Joint locations J = J_regressor . verts -> (B, J, 3)."""
    return jnp.einsum("jv,bvc->bjc", j_regressor_JxV, verts_BxVx3)


def world_from_joint(rot_BxJx3x3: jax.Array, joints_BxJx3: jax.Array,
                     parents: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """Forward kinematics of the rest-pose joints.

    Each joint j rotates its subtree by ``rot[:, j]`` about its own rest location. Returns
    ``(posed_joints (B, J, 3), skin_BxJx3x4)`` where ``skin[:, j] = [R | t]`` maps a rest-pose
    point rigidly attached to joint j to its posed location: x' = R x + t. The loop runs over the
    (static, few) joints of the tree, never over vertices.
    """
    rel = joints_BxJx3.at[:, 1:].add(-joints_BxJx3[:, list(parents[1:])])
    rots, trans = [rot_BxJx3x3[:, 0]], [rel[:, 0]]
    for j in range(1, len(parents)):
        p = parents[j]
        rots.append(rots[p] @ rot_BxJx3x3[:, j])
        trans.append(trans[p] + jnp.einsum("bmn,bn->bm", rots[p], rel[:, j]))
    rot_world = jnp.stack(rots, axis=1)
    posed_joints = jnp.stack(trans, axis=1)
    # A rest point x near joint j moves to R_world (x - J_rest) + J_posed.
    t = posed_joints - jnp.einsum("bjmn,bjn->bjm", rot_world, joints_BxJx3)
    return posed_joints, jnp.concatenate([rot_world, t[..., None]], axis=-1)


def skin(verts_BxVx3: jax.Array, skin_BxJx3x4: jax.Array, weights_VxJ: jax.Array) -> jax.Array:
    """x'_v = sum_j w_vj (R_j x_v + t_j) -> (B, V, 3).

    The blended per-vertex [R | t] is applied column by column (x R[:, 0] + y R[:, 1] + z R[:, 2]
    + t) with elementwise products: written as an einsum over the 3-vector, XLA's CPU backend
    made it B x V tiny matrix products fused with the pose correctives, and FLAME's forward at
    B = 64 ran 3x slower (benchmarks/flame_forward.py)."""
    per_vertex_BxVx3x4 = jnp.einsum("vj,bjmn->bvmn", weights_VxJ, skin_BxJx3x4)
    x, y, z = (verts_BxVx3[..., i, None] for i in range(3))
    return (per_vertex_BxVx3x4[..., 0] * x + per_vertex_BxVx3x4[..., 1] * y
            + per_vertex_BxVx3x4[..., 2] * z + per_vertex_BxVx3x4[..., 3])
