"""Linear blend skinning, as pure functions of explicit arrays (SMPL/FLAME formulation)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def blend_shapes(coeffs_BxK: jax.Array, dirs_KxVx3: jax.Array) -> jax.Array:
    """Linear offsets sum_k coeffs[b, k] * dirs[k] -> (B, V, 3): one (B, K) x (K, V*3)
    product (reshapes of the row-major arrays, no transpose)."""
    k, v, c = dirs_KxVx3.shape
    return (coeffs_BxK @ dirs_KxVx3.reshape(k, v * c)).reshape(-1, v, c)


def pose_feature(rot_BxJx3x3: jax.Array) -> jax.Array:
    """(R_j - I) of the non-root joints, flattened joint-major then row-major -> (B, 9*(J-1))."""
    b = rot_BxJx3x3.shape[0]
    eye = jnp.eye(3, dtype=rot_BxJx3x3.dtype)
    return (rot_BxJx3x3[:, 1:] - eye).reshape(b, -1)


def pose_offsets(rot_BxJx3x3: jax.Array, posedirs_PxVx3: jax.Array) -> jax.Array:
    """Pose-corrective offsets -> (B, V, 3)."""
    return blend_shapes(pose_feature(rot_BxJx3x3), posedirs_PxVx3)


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


def _per_vertex_transforms(skin_BxJx3x4: jax.Array, weights_VxJ: jax.Array) -> jax.Array:
    """The blended [R | t] of every vertex, sum_j w_vj [R_j | t_j] -> (B, V, 3, 4)."""
    b, j = skin_BxJx3x4.shape[:2]
    flat_BxVx12 = jnp.einsum("vj,bjk->bvk", weights_VxJ, skin_BxJx3x4.reshape(b, j, 12))
    return flat_BxVx12.reshape(b, -1, 3, 4)


def _apply(per_vertex_BxVx3x4: jax.Array, verts_BxVx3: jax.Array) -> jax.Array:
    """x R[:, 0] + y R[:, 1] + z R[:, 2] + t with elementwise products: written as an einsum
    over the 3-vector, XLA's CPU backend made it B x V tiny matrix products fused with the pose
    correctives, and FLAME's forward at B = 64 ran 3x slower (benchmarks/flame_forward.py)."""
    x, y, z = (verts_BxVx3[..., i, None] for i in range(3))
    return (per_vertex_BxVx3x4[..., 0] * x + per_vertex_BxVx3x4[..., 1] * y
            + per_vertex_BxVx3x4[..., 2] * z + per_vertex_BxVx3x4[..., 3])


@jax.custom_vjp
def skin(verts_BxVx3: jax.Array, skin_BxJx3x4: jax.Array, weights_VxJ: jax.Array) -> jax.Array:
    """x'_v = sum_j w_vj (R_j x_v + t_j) -> (B, V, 3).

    Differentiable in all three arguments by a hand-written backward (reverse mode only): the
    one XLA derives reduces the (B, V, 3, 4) cotangent over its short axes one slice at a
    time, and was 7x slower than this whole function's backward on the CPU
    (benchmarks/flame_forward.py)."""
    return _apply(_per_vertex_transforms(skin_BxJx3x4, weights_VxJ), verts_BxVx3)


def _skin_forward(verts_BxVx3, skin_BxJx3x4, weights_VxJ):
    per_vertex_BxVx3x4 = _per_vertex_transforms(skin_BxJx3x4, weights_VxJ)
    residuals = (verts_BxVx3, skin_BxJx3x4, weights_VxJ, per_vertex_BxVx3x4)
    return _apply(per_vertex_BxVx3x4, verts_BxVx3), residuals


def _skin_backward(residuals, cotangent_BxVx3):
    verts_BxVx3, skin_BxJx3x4, weights_VxJ, per_vertex_BxVx3x4 = residuals
    b, j = skin_BxJx3x4.shape[:2]
    g = cotangent_BxVx3
    # d x_v = R_v^T g_v, the blended rotation's rows weighted by the cotangent.
    d_verts = (g[..., 0, None] * per_vertex_BxVx3x4[..., 0, :3]
               + g[..., 1, None] * per_vertex_BxVx3x4[..., 1, :3]
               + g[..., 2, None] * per_vertex_BxVx3x4[..., 2, :3])
    # d [R | t]_v = g_v [x_v; 1]^T, then through the blend. Laid out (B, 12, V), the blend's
    # transpose is one plain (B*12, V) x (V, J) product; laid out (B, V, 12), XLA transposed the
    # 12-wide cotangent (4x the size of g) before it.
    g_Bx3xV = jnp.swapaxes(g, 1, 2)
    homogeneous_Bx4xV = jnp.concatenate(
        [jnp.swapaxes(verts_BxVx3, 1, 2), jnp.ones_like(verts_BxVx3[:, None, :, 0])], 1)
    d_per_vertex = (g_Bx3xV[:, :, None] * homogeneous_Bx4xV[:, None]).reshape(b * 12, -1)
    d_skin = jnp.swapaxes((d_per_vertex @ weights_VxJ).reshape(b, 12, j), 1, 2)
    d_weights = jnp.einsum("bkv,bjk->vj", d_per_vertex.reshape(b, 12, -1),
                           skin_BxJx3x4.reshape(b, j, 12))
    return (d_verts, d_skin.reshape(b, j, 3, 4).astype(skin_BxJx3x4.dtype),
            d_weights.astype(weights_VxJ.dtype))


skin.defvjp(_skin_forward, _skin_backward)
