import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame
from tests.finite_differences import assert_directional_derivative
from tests.flame import flame_reference as ref

_forward = jax.jit(flame.forward)


def _run(model, shape, expression, pose):
    return _forward(model, jnp.asarray(shape), jnp.asarray(expression), jnp.asarray(pose))


def test_forward_matches_numpy_reference_float64(model, rng, x64):
    m64 = flame.with_dtype(model, jnp.float64)
    shape, expression, pose = ref.random_params(rng, 100, 50, batch=4)
    out = _run(m64, shape, expression, pose)
    assert out.vertices.dtype == jnp.float64
    verts, joints = ref.forward(model.arrays(), shape, expression, pose)
    np.testing.assert_allclose(np.asarray(out.vertices), verts, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out.joints), joints, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out.landmarks3d),
                               ref.landmarks(model.arrays(), verts, pose), atol=1e-12)


def test_forward_float32_close_to_reference(model, rng):
    shape, expression, pose = ref.random_params(rng, 100, 50, batch=3)
    out = _run(model, shape.astype(np.float32), expression.astype(np.float32),
               pose.astype(np.float32))
    assert out.vertices.dtype == jnp.float32
    verts, _ = ref.forward(model.arrays(), shape, expression, pose)
    np.testing.assert_allclose(np.asarray(out.vertices), verts, atol=2e-6)


def test_fewer_coefficients_mean_trailing_zeros(model, rng, x64):
    m64 = flame.with_dtype(model, jnp.float64)
    shape, expression, pose = ref.random_params(rng, 10, 5, batch=2)
    short = _run(m64, shape, expression, pose).vertices
    padded = _run(m64, np.pad(shape, ((0, 0), (0, 90))), np.pad(expression, ((0, 0), (0, 45))),
                  pose).vertices
    np.testing.assert_allclose(np.asarray(short), np.asarray(padded), atol=1e-14)


def test_bad_argument_shapes_are_reported(model):
    with pytest.raises(ValueError, match="pose must be"):
        flame.forward(model, jnp.zeros((1, 100)), jnp.zeros((1, 50)), jnp.zeros((1, 12)))
    with pytest.raises(ValueError, match="coefficients"):
        flame.forward(model, jnp.zeros((1, 101)), jnp.zeros((1, 50)), jnp.zeros((1, 15)))


@pytest.mark.parametrize("group", ["shape", "expression", "pose"])
def test_forward_gradient_matches_finite_differences(model, rng, x64, group):
    m64 = flame.with_dtype(model, jnp.float64)
    params = dict(zip(("shape", "expression", "pose"),
                      ref.random_params(rng, 100, 50, batch=2, pose_scale=0.2), strict=True))
    w_verts = jnp.asarray(rng.normal(size=(2, model.n_vertices, 3)))
    w_lmk = jnp.asarray(rng.normal(size=(2, 68, 3)))
    w_joints = jnp.asarray(rng.normal(size=(2, 5, 3)))

    def loss(x):
        p = {**{k: jnp.asarray(v) for k, v in params.items()}, group: x}
        out = flame.forward(m64, p["shape"], p["expression"], p["pose"])
        return (jnp.sum(out.vertices * w_verts) + jnp.sum(out.landmarks3d * w_lmk)
                + jnp.sum(out.joints * w_joints))

    x0 = jnp.asarray(params[group])
    grad = np.asarray(jax.jit(jax.grad(loss))(x0))
    for _ in range(3):  # directional derivatives along random directions
        assert_directional_derivative(loss, x0, grad, rng.normal(size=x0.shape), eps=1e-6)


def test_jit_vmap_and_jit_grad(model, rng):
    shape, expression, pose = (jnp.asarray(a, jnp.float32)
                               for a in ref.random_params(rng, 100, 50, batch=6))

    def one(s, e, p):
        return flame.forward(model, s[None], e[None], p[None]).vertices[0]

    batched = jax.jit(jax.vmap(one))(shape, expression, pose)
    direct = flame.forward(model, shape, expression, pose).vertices
    np.testing.assert_allclose(np.asarray(batched), np.asarray(direct), atol=1e-6)

    @jax.jit
    def loss(m, s, e, p):
        return jnp.mean(flame.forward(m, s, e, p).vertices ** 2)

    grads = jax.grad(loss, argnums=(1, 2, 3))(model, shape, expression, pose)
    assert all(np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0) for g in grads)


def test_gradient_is_finite_at_zero_pose(model):
    def loss(p):
        return jnp.sum(flame.forward(model, jnp.zeros((1, 100)), jnp.zeros((1, 50)), p)
                       .vertices)

    g = np.asarray(jax.jit(jax.grad(loss))(jnp.zeros((1, 15))))
    assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_skinning_backward_matches_the_formula_and_finite_differences(model, rng, x64):
    """lbs.skin's hand-written backward against NumPy's float64 gradient of the formula
    x'_v = sum_j w_vj (R_j x_v + t_j), for all three arguments, and a central difference."""
    b, v, j = 3, 40, 5
    verts = rng.normal(size=(b, v, 3))
    mats = rng.normal(size=(b, j, 3, 4))
    weights = rng.dirichlet(np.ones(j), size=v)
    cotangent = rng.normal(size=(b, v, 3))
    out, pullback = jax.vjp(flame.lbs.skin, *map(jnp.asarray, (verts, mats, weights)))
    d_verts, d_mats, d_weights = (np.asarray(g) for g in pullback(jnp.asarray(cotangent)))

    homogeneous = np.concatenate([verts, np.ones((b, v, 1))], -1)
    per_joint = np.einsum("bjmn,bvn->bvjm", mats, homogeneous)    # R_j x_v + t_j
    np.testing.assert_allclose(np.asarray(out), np.einsum("vj,bvjm->bvm", weights, per_joint),
                               atol=1e-12)
    np.testing.assert_allclose(d_weights, np.einsum("bvm,bvjm->vj", cotangent, per_joint),
                               atol=1e-12)
    np.testing.assert_allclose(
        d_mats, np.einsum("vj,bvm,bvn->bjmn", weights, cotangent, homogeneous), atol=1e-12)
    np.testing.assert_allclose(
        d_verts, np.einsum("vj,bjmn,bvm->bvn", weights, mats[..., :3], cotangent), atol=1e-12)

    args = [jnp.asarray(a) for a in (verts, mats, weights)]
    for i, grad in enumerate((d_verts, d_mats, d_weights)):
        def loss(x, i=i):
            return jnp.sum(flame.lbs.skin(*args[:i], x, *args[i + 1:]) * cotangent)
        assert_directional_derivative(loss, args[i], grad, rng.normal(size=grad.shape),
                                      eps=1e-6)
