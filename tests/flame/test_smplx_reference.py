"""Our FLAME against smplx's FLAME layer (PyTorch), an independent implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame

torch = pytest.importorskip("torch", reason="the smplx reference needs the `torch` extra")
smplx = pytest.importorskip("smplx", reason="the smplx reference needs the `torch` extra")
pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def smplx_flame(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("smplx_flame")
    flame.save_smplx_flame(d, model)
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
