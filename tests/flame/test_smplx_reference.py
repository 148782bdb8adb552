"""Our FLAME against smplx's FLAME layer (PyTorch), an independent implementation."""

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame

torch = pytest.importorskip("torch", reason="the smplx reference needs the `torch` extra")
smplx = pytest.importorskip("smplx", reason="the smplx reference needs the `torch` extra")
pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def smplx_flame(tmp_path_factory, head_arrays):
    import scipy.sparse

    a = head_arrays
    d = tmp_path_factory.mktemp("smplx_flame")
    with open(d / "FLAME_NEUTRAL.pkl", "wb") as f:
        pickle.dump({
            "v_template": a["v_template"].astype(np.float64),
            "shapedirs": np.concatenate([a["shapedirs"], a["exprdirs"]], -1).astype(np.float64),
            "posedirs": a["posedirs"].astype(np.float64),
            "J_regressor": scipy.sparse.csc_matrix(a["j_regressor"].astype(np.float64)),
            "weights": a["lbs_weights"].astype(np.float64),
            "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]]),
            "f": a["faces"].astype(np.int64),
        }, f)
    with open(d / "flame_static_embedding.pkl", "wb") as f:
        pickle.dump({"lmk_face_idx": a["static_lmk_faces"].astype(np.int64),
                     "lmk_b_coords": a["static_lmk_bary"].astype(np.float64)}, f)
    # smplx bins -yaw where DECA (and jaxface) bin +yaw: its bin b holds our bin of -yaw(b).
    yaw = np.where(np.arange(79) <= 39, np.arange(79), 39 - np.arange(79))
    ours = np.where(-yaw >= 0, -yaw, 39 + yaw)
    np.save(d / "flame_dynamic_embedding.npy",
            {"lmk_face_idx": a["dynamic_lmk_faces"][ours].astype(np.int64),
             "lmk_b_coords": a["dynamic_lmk_bary"][ours].astype(np.float64)}, allow_pickle=True)
    return smplx.FLAME(model_path=str(d), num_betas=100, num_expression_coeffs=50,
                       use_face_contour=True, dtype=torch.float64, batch_size=4,
                       vertex_ids={"nose": 0, "reye": 1, "leye": 2, "rear": 3, "lear": 4},
                       use_hands=False, use_feet_keypoints=False)


def test_forward_matches_smplx(smplx_flame, model, rng, x64):
    shape, expression = rng.normal(size=(4, 100)), rng.normal(size=(4, 50))
    pose = rng.normal(scale=0.3, size=(4, 15))
    pose[:, 1] = np.radians([-50.0, -20.0, 10.0, 30.0])  # yaws across both halves of the bins
    pose[:, 3:6] = 0.0  # smplx picks the contour from the root's yaw alone, DECA (and we) from
    #                     root @ neck: with a still neck both agree
    t = {k: torch.from_numpy(v) for k, v in
         dict(betas=shape, expression=expression, global_orient=pose[:, :3],
              neck_pose=pose[:, 3:6], jaw_pose=pose[:, 6:9], leye_pose=pose[:, 9:12],
              reye_pose=pose[:, 12:15]).items()}
    with torch.no_grad():
        want = smplx_flame(**t)
    ours = jax.jit(flame.forward)(flame.with_dtype(model, jnp.float64), jnp.asarray(shape),
                                  jnp.asarray(expression), jnp.asarray(pose))
    # smplx's Rodrigues adds 1e-8 to every rotation vector: agreement to ~1e-9 m is exact.
    atol = 1e-8
    np.testing.assert_allclose(np.asarray(ours.vertices), want.vertices.numpy(), atol=atol)
    # smplx appends the landmarks (51 static, then 17 contour) after the 5 joints.
    assert want.joints.shape[1] == 5 + 68
    lmk = want.joints.numpy()[:, 5:]
    np.testing.assert_allclose(np.asarray(ours.landmarks3d[:, 17:]), lmk[:, :51], atol=atol)
    np.testing.assert_allclose(np.asarray(ours.landmarks3d[:, :17]), lmk[:, 51:], atol=atol)
    np.testing.assert_allclose(np.asarray(ours.joints), want.joints.numpy()[:, :5], atol=atol)
