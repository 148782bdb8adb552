import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.models import DetailDecoder, detail_latent

torch = pytest.importorskip("torch", reason="the reference generator is written in PyTorch")
tnn = torch.nn


def _torch_generator(latent, seed_side, eps):
    """DECA's detail generator, written here from its description (NCHW)."""
    widths = (128, 128, 64, 64, 32, 16)
    layers = [tnn.BatchNorm2d(128)]
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [tnn.Upsample(scale_factor=2, mode="bilinear"), tnn.Conv2d(a, b, 3, 1, 1),
                   tnn.BatchNorm2d(b, eps), tnn.LeakyReLU(0.2)]
    layers += [tnn.Conv2d(16, 1, 3, 1, 1), tnn.Tanh()]
    return tnn.Linear(latent, 128 * seed_side**2), tnn.Sequential(*layers)


def _copy_weights(decoder, linear, blocks, rng):
    """Random weights and statistics in the torch model, copied into the Flax decoder."""
    with torch.no_grad():
        for m in [linear, *blocks]:
            for p in m.parameters():
                p.copy_(torch.from_numpy(rng.normal(size=p.shape).astype(np.float32) * 0.1))
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(torch.from_numpy(rng.normal(size=m.num_features) * 0.1))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, m.num_features)))
    t = lambda x: jnp.asarray(x.detach().numpy())  # noqa: E731
    decoder.linear.kernel[...] = t(linear.weight).T
    decoder.linear.bias[...] = t(linear.bias)
    convs = [m for m in blocks if isinstance(m, tnn.Conv2d)]
    bns = [m for m in blocks if isinstance(m, tnn.BatchNorm2d)]
    for ours, theirs in zip([*decoder.convs, decoder.out], convs, strict=True):
        ours.kernel[...] = t(theirs.weight).transpose(2, 3, 1, 0)
        ours.bias[...] = t(theirs.bias)
    for ours, theirs in zip([decoder.bn0, *decoder.bns], bns, strict=True):
        ours.scale[...], ours.bias[...] = t(theirs.weight), t(theirs.bias)
        ours.mean[...], ours.var[...] = t(theirs.running_mean), t(theirs.running_var)


@pytest.mark.parametrize("uv_size,eps", [(64, 0.8), (32, 1e-5)])
def test_decoder_matches_deca_generator(rng, uv_size, eps):
    latent = 20
    decoder = DetailDecoder(latent, uv_size, out_scale=0.01, bn_epsilon=eps, rngs=nnx.Rngs(0))
    linear, blocks = _torch_generator(latent, uv_size // 32, eps)
    _copy_weights(decoder, linear, blocks, rng)
    z = rng.normal(size=(3, latent)).astype(np.float32)
    with torch.no_grad():
        seed = linear.eval()(torch.from_numpy(z)).view(3, 128, uv_size // 32, uv_size // 32)
        want = (blocks.eval()(seed) * 0.01).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(nnx.view(decoder, use_running_average=True)(jnp.asarray(z)))
    assert got.shape == (3, uv_size, uv_size, 1) and np.abs(got).max() <= 0.01
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_decoder_input_and_size_checks():
    code, exp, jaw = jnp.full((2, 128), 1.0), jnp.full((2, 50), 2.0), jnp.full((2, 3), 3.0)
    z = np.asarray(detail_latent(code, exp, jaw))
    assert z.shape == (2, 181)
    # DECA's order: D_detail(cat([pose[:, 3:] (jaw), exp, detail code]))
    assert (z[:, :3] == 3).all() and (z[:, 3:53] == 2).all() and (z[:, 53:] == 1).all()
    with pytest.raises(ValueError, match="multiple of 32"):
        DetailDecoder(181, 100, rngs=nnx.Rngs(0))
