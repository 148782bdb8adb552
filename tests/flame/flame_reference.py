"""An independent float64 NumPy FLAME, written from the formula for the tests.

Unlike the package (3x4 per-joint transforms, its own Rodrigues), this uses scipy's rotations,
4x4 homogeneous world transforms built joint by joint, and explicit loops over the batch.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def rotations(pose_Bx15: np.ndarray) -> np.ndarray:
    b = pose_Bx15.shape[0]
    return Rotation.from_rotvec(pose_Bx15.reshape(-1, 3)).as_matrix().reshape(b, -1, 3, 3)


def forward(arrays: dict, shape: np.ndarray, expression: np.ndarray, pose: np.ndarray):
    """-> (vertices (B, V, 3), joints (B, J, 3)), all float64."""
    f64 = {k: np.asarray(v, np.float64) for k, v in arrays.items()}
    parents = [int(p) for p in arrays["parents"]]
    rots = rotations(np.asarray(pose, np.float64))
    verts_out, joints_out = [], []
    for b in range(shape.shape[0]):
        v = (f64["v_template"]
             + f64["shapedirs"][..., : shape.shape[1]] @ shape[b]
             + f64["exprdirs"][..., : expression.shape[1]] @ expression[b])
        joints = f64["j_regressor"] @ v
        feature = (rots[b, 1:] - np.eye(3)).reshape(-1)
        v = v + f64["posedirs"] @ feature
        world = []
        for j, p in enumerate(parents):
            local = np.eye(4)
            local[:3, :3] = rots[b, j]
            local[:3, 3] = joints[j] - (joints[p] if p >= 0 else 0.0)
            world.append(local if p < 0 else world[p] @ local)
        world = np.stack(world)
        rest = np.tile(np.eye(4), (len(parents), 1, 1))
        rest[:, :3, 3] = -joints
        skinning = world @ rest                      # world transform of a rest-pose point
        blended = np.einsum("vj,jmn->vmn", f64["lbs_weights"], skinning)
        hom = np.concatenate([v, np.ones((len(v), 1))], 1)
        verts_out.append(np.einsum("vmn,vn->vm", blended, hom)[:, :3])
        joints_out.append(world[:, :3, 3])
    return np.stack(verts_out), np.stack(joints_out)


def contour_bins(pose: np.ndarray) -> np.ndarray:
    """DECA's bin of the head's yaw (root @ neck rotation)."""
    rots = rotations(np.asarray(pose, np.float64))
    head = rots[:, 0] @ rots[:, 1]
    yaw = np.degrees(np.arcsin(np.clip(-head[:, 2, 0], -1, 1)))
    yaw = np.clip(np.round(yaw), -39, 39).astype(int)
    return np.where(yaw >= 0, yaw, 39 - yaw)


def landmarks(arrays: dict, verts: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """The 68 image landmarks (dynamic contour then static), float64."""
    bins = contour_bins(pose)
    out = []
    for b in range(verts.shape[0]):
        faces = np.concatenate([arrays["dynamic_lmk_faces"][bins[b]], arrays["static_lmk_faces"]])
        bary = np.concatenate([arrays["dynamic_lmk_bary"][bins[b]], arrays["static_lmk_bary"]])
        tri = verts[b][arrays["faces"][faces]]       # (68, 3 corners, 3)
        out.append(np.sum(tri * bary[..., None], axis=1))
    return np.stack(out)


def random_params(rng, n_shape, n_expression, batch, pose_scale=0.3):
    shape = rng.normal(size=(batch, n_shape))
    expression = rng.normal(size=(batch, n_expression))
    pose = rng.normal(scale=pose_scale, size=(batch, 15))
    return shape, expression, pose
