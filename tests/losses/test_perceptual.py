import jax
import jax.numpy as jnp
import numpy as np

from jaxface.losses import id_mrf, id_mrf_layer, identity_cosine


def _np_mrf(gen, tar, bias=1.0, sigma=0.5, eps=1e-5):
    """DECA's ID-MRF mrf_loss for patch size 1, NCHW, float64, one image at a time."""
    total = []
    for g, t in zip(gen.transpose(0, 3, 1, 2), tar.transpose(0, 3, 1, 2), strict=True):
        mean_t = t.mean(0, keepdims=True)                    # over channels, per position
        g, t = g - mean_t, t - mean_t
        g = g / np.linalg.norm(g, axis=0, keepdims=True)
        t = t / np.linalg.norm(t, axis=0, keepdims=True)
        c = g.shape[0]
        patches = t.reshape(c, -1).T                         # (N_tar, C): 1x1 "filters"
        cos = np.einsum("jc,chw->jhw", patches, g)           # conv2d(gen, patches)
        dist = -(cos - 1) / 2
        rel = dist / (dist.min(0, keepdims=True) + eps)      # min over target patches
        w = np.exp((bias - rel) / sigma)
        w = w / w.sum(0, keepdims=True)
        total.append(-np.log(w.reshape(w.shape[0], -1).max(1).mean()))
    return np.mean(total)


def test_id_mrf_against_deca_formulation(rng, x64):
    gen = rng.normal(size=(2, 5, 6, 8))
    tar = gen + 0.5 * rng.normal(size=gen.shape)
    np.testing.assert_allclose(float(id_mrf_layer(jnp.asarray(gen), jnp.asarray(tar))),
                               _np_mrf(gen, tar), rtol=1e-10)
    feats_g = {"relu3_2": gen, "relu4_2": gen[:, :3, :3]}
    feats_t = {"relu3_2": tar, "relu4_2": tar[:, :3, :3]}
    want = _np_mrf(gen, tar) + 2 * _np_mrf(gen[:, :3, :3], tar[:, :3, :3])
    got = id_mrf(jax.tree.map(jnp.asarray, feats_g), jax.tree.map(jnp.asarray, feats_t))
    np.testing.assert_allclose(float(got), want, rtol=1e-10)
    # Identical features match themselves best: a lower loss than unrelated ones.
    same = float(id_mrf_layer(jnp.asarray(tar), jnp.asarray(tar)))
    other = float(id_mrf_layer(jnp.asarray(rng.normal(size=tar.shape)), jnp.asarray(tar)))
    assert same < other


def test_identity_cosine(rng, x64):
    a, b = rng.normal(size=(4, 16)), rng.normal(size=(4, 16))
    want = np.mean(1 - np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(float(identity_cosine(jnp.asarray(a), jnp.asarray(b))), want,
                               rtol=1e-12)
    assert abs(float(identity_cosine(jnp.asarray(a), jnp.asarray(3 * a)))) < 1e-12
    grad = jax.grad(identity_cosine)(jnp.asarray(a), jnp.asarray(b))
    d = rng.normal(size=a.shape)
    fd = (identity_cosine(jnp.asarray(a + 1e-6 * d), jnp.asarray(b))
          - identity_cosine(jnp.asarray(a - 1e-6 * d), jnp.asarray(b))) / 2e-6
    np.testing.assert_allclose(float(jnp.sum(grad * d)), float(fd), rtol=1e-6)
