import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.render import texture
from tests.finite_differences import assert_directional_derivative


def _reference(tex, uv, mode, boundary):
    """float64 NumPy texture lookup from the definition: texel (i, j) centred at
    ((j + 0.5) / W, (i + 0.5) / H), row 0 at v = 0."""
    h, w, _ = tex.shape
    x, y = uv[..., 0] * w - 0.5, uv[..., 1] * h - 0.5

    def fetch(r, c):
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        if boundary == "wrap":
            r, c = r % h, c % w
        else:
            r, c = np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)
        out = tex[r, c]
        return np.where(inside[..., None], out, 0.0) if boundary == "zero" else out

    if mode == "nearest":
        return fetch(np.floor(y + 0.5).astype(int), np.floor(x + 0.5).astype(int))
    out = np.zeros(uv.shape[:-1] + (tex.shape[-1],))
    r0, c0 = np.floor(y).astype(int), np.floor(x).astype(int)
    for dr in (0, 1):
        for dc in (0, 1):
            wr = (y - r0) if dr else (1 - (y - r0))
            wc = (x - c0) if dc else (1 - (x - c0))
            out += (wr * wc)[..., None] * fetch(r0 + dr, c0 + dc)
    return out


@pytest.mark.parametrize("mode", ["linear", "nearest"])
@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero"])
def test_texture_against_reference(rng, x64, mode, boundary):
    tex = rng.normal(size=(2, 5, 7, 3))
    uv = rng.uniform(-0.3, 1.3, size=(2, 4, 6, 2))
    got = np.asarray(texture(jnp.asarray(tex), jnp.asarray(uv), mode, boundary))
    for b in range(2):
        np.testing.assert_allclose(got[b], _reference(tex[b], uv[b], mode, boundary),
                                   atol=1e-12)


def test_texel_centres_are_exact(x64):
    tex = np.arange(12.0).reshape(1, 3, 4, 1)
    uv = np.array([[[[(1 + 0.5) / 4, (2 + 0.5) / 3]]]])  # texel (row 2, column 1)
    np.testing.assert_allclose(np.asarray(texture(jnp.asarray(tex), jnp.asarray(uv))),
                               [[[[9.0]]]])


@pytest.mark.parametrize("arg", [0, 1])
def test_linear_texture_gradients(rng, x64, arg):
    tex = jnp.asarray(rng.normal(size=(1, 6, 5, 2)))
    uv = jnp.asarray(rng.uniform(0.05, 0.95, size=(1, 3, 4, 2)))
    weights = jnp.asarray(rng.normal(size=(1, 3, 4, 2)))

    def loss(*args):
        return jnp.sum(texture(*args, "linear", "clamp") * weights)

    grad = np.asarray(jax.grad(loss, argnums=arg)(tex, uv))
    x0 = (tex, uv)[arg]

    def at(x):
        args = [tex, uv]
        args[arg] = x
        return loss(*args)

    assert_directional_derivative(at, x0, grad, rng.normal(size=x0.shape), eps=1e-7)


def test_bad_modes():
    with pytest.raises(ValueError, match="filter_mode"):
        texture(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 1, 1, 2)), "cubic")
    with pytest.raises(ValueError, match="boundary_mode"):
        texture(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 1, 1, 2)), "linear", "mirror")
