import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.models import GRPAM, RGA, count_params, stage_sizes
from jaxface.models.resnet import STAGE_CHANNELS

C, H, W = 16, 4, 6
RATIOS = dict(cha_ratio=4, spa_ratio=4, down_ratio=2)


def _randomized(module, rng, bias=None, kernel_std=0.3):
    """Random weights and BatchNorm statistics everywhere (nothing at its initial value);
    ``bias``: a (low, high) range for BatchNorm shifts instead of small normal ones."""
    updates = []
    for path, var in nnx.to_flat_state(nnx.state(module)):
        shape = var.get_value().shape
        value = {"var": rng.uniform(0.5, 1.5, shape), "scale": rng.uniform(0.5, 1.5, shape)}.get(
            path[-1], rng.normal(size=shape) * (kernel_std if path[-1] == "kernel" else 0.1))
        if path[-1] == "bias" and bias is not None:
            value = rng.uniform(*bias, shape)
        updates.append((path, jnp.asarray(value)))  # float64 under the x64 fixture
    nnx.update(module, nnx.from_flat_state(updates))
    return module


def _weights(module):
    return {".".join(map(str, p)): np.asarray(v.get_value(), np.float64)
            for p, v in nnx.to_flat_state(nnx.state(module))}


def _reference_rga(x_nchw, wt, train, eps=1e-5):
    """The official RGA forward pass (rga_modules.py), NCHW, float64, written from its code."""
    b, c, h, w = x_nchw.shape
    n = h * w

    def conv_bn(name, t, relu=True):          # 1x1 conv (no bias) + BN (+ ReLU), NCHW
        y = np.einsum("oc,bchw->bohw", wt[f"{name}.conv.kernel"].T, t)
        if train:
            mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3))
        else:
            mean, var = wt[f"{name}.bn.mean"], wt[f"{name}.bn.var"]
        y = ((y - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps)
             * wt[f"{name}.bn.scale"][:, None, None] + wt[f"{name}.bn.bias"][:, None, None])
        return np.maximum(y, 0) if relu else y

    def branch(prefix, t, hh, ww):            # t: (b, channels, hh, ww)
        theta = conv_bn(f"{prefix}.theta", t).reshape(b, -1, hh * ww).transpose(0, 2, 1)
        phi = conv_bn(f"{prefix}.phi", t).reshape(b, -1, hh * ww)
        g = theta @ phi                                            # (b, hh ww, hh ww)
        g_in = g.transpose(0, 2, 1).reshape(b, hh * ww, hh, ww)
        g_out = g.reshape(b, hh * ww, hh, ww)
        joint = conv_bn(f"{prefix}.gg", np.concatenate([g_in, g_out], 1))
        own = conv_bn(f"{prefix}.gx", t).mean(1, keepdims=True)
        y = np.concatenate([own, joint], 1)
        return conv_bn(f"{prefix}.w2", conv_bn(f"{prefix}.w1", y), relu=False)

    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    spatial = sig(branch("spatial", x_nchw, h, w))                 # (b, 1, h, w)
    x = spatial * x_nchw
    xc = x.reshape(b, c, n).transpose(0, 2, 1)[..., None]          # (b, n, c, 1)
    channel = sig(branch("channel", xc, c, 1)).transpose(0, 2, 1, 3)  # (b, c, 1, 1)
    return channel * x, spatial, channel


@pytest.mark.parametrize("train", [False, True])
def test_rga_matches_the_official_forward(rng, x64, train):
    # Random weights are redrawn (from the same generator) while a branch's attention comes
    # out constant: in eval mode, about one draw in 25 leaves every hidden unit of the small
    # channel branch dead, and the comparison would not exercise it.
    for _ in range(20):
        rga = _randomized(RGA(C, H * W, **RATIOS, rngs=nnx.Rngs(0)), rng)
        x = rng.normal(size=(3, C, H, W))
        net = nnx.view(rga, use_running_average=not train)
        got, got_s, got_c = net.attention(jnp.asarray(x.transpose(0, 2, 3, 1)))
        if min(np.ptp(np.asarray(got_s)), np.ptp(np.asarray(got_c))) > 1e-3:
            break
    want, want_s, want_c = _reference_rga(x, _weights(rga), train)
    np.testing.assert_allclose(np.asarray(got), want.transpose(0, 2, 3, 1), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(np.asarray(got_s)[..., 0], want_s[:, 0], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(got_c)[:, 0, 0], want_c[:, :, 0, 0], rtol=1e-10)
    for att in (got_s, got_c):
        assert np.all((np.asarray(att) > 0) & (np.asarray(att) < 1))
        assert np.ptp(np.asarray(att)) > 1e-3  # not a constant map


def test_relation_term_makes_attention_global(rng, x64):
    """Changing one corner pixel changes the spatial attention logit at the opposite corner,
    only through the relation embedding (with its weights zeroed the far logit is unchanged).
    Small weights and positive BatchNorm shifts keep every ReLU active, so no unit is dead by
    chance."""
    rga = _randomized(RGA(C, H * W, **RATIOS, rngs=nnx.Rngs(0)), rng, (2.0, 3.0), 0.03)
    rga = nnx.view(rga, use_running_average=True)
    x = rng.normal(size=(1, H, W, C))
    x2 = x.copy()
    x2[0, 0, 0] += 5.0 * rng.normal(size=C)

    def far(m, inp):  # the logit before the sigmoid, so saturation cannot hide a change
        return float(m.spatial(jnp.asarray(inp).reshape(1, H * W, C))[0, -1, 0])

    assert abs(far(rga, x) - far(rga, x2)) > 1e-10  # float64: rounding is ~1e-16
    kernel = rga.spatial.gg.conv.kernel
    kernel[...] = jnp.zeros_like(kernel[...])
    assert far(rga, x) == far(rga, x2)


def _official_count(c, n, cha=8, spa=8, down=8):
    """Parameters of the official RGA_Module(c, n) (conv weights + BN weight and bias)."""
    ic, isp = c // cha, n // spa
    ds, dc = (1 + isp) // down, (1 + ic) // down
    spatial = 3 * (c * ic + 2 * ic) + (2 * n * isp + 2 * isp) + ((1 + isp) * ds + 2 * ds) + ds + 2
    channel = 3 * (n * isp + 2 * isp) + (2 * c * ic + 2 * ic) + ((1 + ic) * dc + 2 * dc) + dc + 2
    return spatial + channel


def test_parameter_counts_follow_the_official_layers():
    assert count_params(nnx.state(RGA(C, H * W, **RATIOS, rngs=nnx.Rngs(0)), nnx.Param)) == \
        _official_count(C, H * W, 4, 4, 2)
    grpam = nnx.eval_shape(lambda: GRPAM(224, 1, 256, 8, 8, 8, rngs=nnx.Rngs(0)))
    for rga, c, side in zip(grpam.rga, STAGE_CHANNELS, stage_sizes(224, 1), strict=True):
        assert count_params(nnx.state(rga, nnx.Param)) == _official_count(c, side * side)
    # The numbers, for the record (224 x 224 input, last stride 1: 56, 28, 14, 14 sides).
    assert [_official_count(c, s * s) for c, s in zip(STAGE_CHANNELS, (56, 28, 14, 14),
                                                     strict=True)] == \
        [6210464, 551068, 682296, 2655608]


def test_degenerate_and_mismatched_sizes_are_errors():
    with pytest.raises(ValueError, match="degenerates.*last_stride = 1"):
        RGA(2048, 7 * 7, rngs=nnx.Rngs(0))  # 224 input, stride-2 stage 4: (1 + 6) // 8 = 0
    rga = RGA(C, H * W, **RATIOS, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="built for 24 positions and got a 5x5"):
        rga(jnp.zeros((1, 5, 5, C)))


def test_rga_is_differentiable_under_jit(rng):
    rga = _randomized(RGA(C, H * W, **RATIOS, rngs=nnx.Rngs(0)), rng)
    graphdef, params, stats = nnx.split(rga, nnx.Param, nnx.BatchStat)

    @jax.jit
    def loss(p, s, x):
        return jnp.sum(nnx.merge(graphdef, p, s)(x) ** 2)

    grads = jax.grad(loss)(params, stats, jnp.asarray(rng.normal(size=(2, H, W, C)),
                                                      jnp.float32))
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert sum(float(jnp.sum(jnp.abs(g))) > 0 for g in leaves) == len(leaves)


@pytest.mark.parametrize("train", [False, True])
def test_low_rank_relation_embedding_equals_the_direct_one(rng, x64, train):
    """[G, G^T] W computed as theta (phi^T W_out) + phi (theta^T W_in): the same outputs and
    gradients (inputs and every parameter) as building the N x N relation matrix."""
    rga = _randomized(RGA(C, H * W, **RATIOS, rngs=nnx.Rngs(0)), rng)
    assert rga.spatial.low_rank and rga.channel.low_rank   # both cheaper here (d < N / 2)
    net = nnx.view(rga, use_running_average=not train)
    x = jnp.asarray(rng.normal(size=(3, H, W, C)))
    cotangent = jnp.asarray(rng.normal(size=x.shape))

    def run(low_rank):
        net.spatial.low_rank = net.channel.low_rank = low_rank
        graphdef, state = nnx.split(net)

        def loss(state, x):
            return jnp.sum(nnx.merge(graphdef, state)(x) * cotangent)
        return loss(state, x), jax.grad(loss, argnums=(0, 1))(state, x)

    (fast, fast_grads), (direct, direct_grads) = run(True), run(False)
    np.testing.assert_allclose(float(fast), float(direct), rtol=1e-10)
    for a, b in zip(jax.tree.leaves(fast_grads), jax.tree.leaves(direct_grads), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)
