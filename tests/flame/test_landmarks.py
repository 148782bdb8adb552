import jax.numpy as jnp
import numpy as np
from scipy.spatial.transform import Rotation

from jaxface import flame
from jaxface.flame.landmarks import barycentric_points, contour_bin
from tests.flame import flame_reference as ref


def test_contour_bin_follows_decas_layout(rng, x64):
    yaws = np.concatenate([rng.uniform(-60, 60, 200), [0.0, 39.0, -39.0, -1.0, 45.0, -45.0]])
    # The head rotation is root @ neck: split each yaw between the two joints.
    split = rng.uniform(0, 1, len(yaws))
    neck = Rotation.from_euler("y", (yaws * split)[:, None], degrees=True).as_matrix()
    root = Rotation.from_euler("y", (yaws * (1 - split))[:, None], degrees=True).as_matrix()
    got = np.asarray(contour_bin(jnp.asarray(np.stack([neck, root], 1))))
    rounded = np.clip(np.round(yaws), -39, 39).astype(int)
    want = np.where(rounded >= 0, rounded, 39 - rounded)  # DECA: 0..39, then 40..78 = -1..-39
    np.testing.assert_array_equal(got, want)


def test_barycentric_points_against_numpy(rng, x64):
    verts = rng.normal(size=(2, 30, 3))
    faces = rng.integers(0, 30, size=(20, 3))
    face_idx = rng.integers(0, 20, size=(2, 7))
    bary = rng.dirichlet(np.ones(3), size=(2, 7))
    got = np.asarray(barycentric_points(jnp.asarray(verts), jnp.asarray(faces),
                                        jnp.asarray(face_idx), jnp.asarray(bary)))
    want = np.zeros((2, 7, 3))
    for b in range(2):
        for k in range(7):
            corners = verts[b, faces[face_idx[b, k]]]
            want[b, k] = bary[b, k] @ corners
    np.testing.assert_allclose(got, want, atol=1e-14)


def test_landmarks_follow_yaw_bins(model, rng, x64):
    m64 = flame.with_dtype(model, jnp.float64)
    pose = np.zeros((3, 15))
    pose[:, 1] = np.radians([-30.2, 0.0, 25.3])  # global yaw
    shape, expression = rng.normal(size=(3, 100)), rng.normal(size=(3, 50))
    out = flame.forward(m64, jnp.asarray(shape), jnp.asarray(expression), jnp.asarray(pose))
    verts, _ = ref.forward(model.arrays(), shape, expression, pose)
    np.testing.assert_allclose(np.asarray(out.landmarks3d), ref.landmarks(model.arrays(), verts,
                                                                          pose), atol=1e-12)
    np.testing.assert_array_equal(ref.contour_bins(pose), [39 + 30, 0, 25])
    # At zero yaw the image landmarks are the full static embedding.
    np.testing.assert_allclose(np.asarray(out.landmarks3d[1]),
                               np.asarray(out.landmarks3d_static[1]), atol=1e-12)
