import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.models import apply, build_network, count_params, decode_params, param_sizes
from jaxface.models.resnet import STAGE_CHANNELS, stage_sizes
from jaxface.models.summary import ablation_table, abstract_network, summarize
from tests.models.test_rga import _official_count

RESNET50 = 23_508_032  # torchvision's, without fc


def _expected_counts(cfg, sizes):
    """Parameter counts written from the architecture (not from the modules)."""
    in_ch = 3 + (cfg.landmark_channels + 1 if cfg.use_priors else 0)
    n_params = sum(sizes.values())
    backbone = RESNET50 + 64 * 7 * 7 * (in_ch - 3)
    head_in = 2048
    grpam = 0
    if cfg.use_grpam:
        sides = stage_sizes(cfg.image_size, cfg.last_stride)
        grpam += sum(_official_count(c, s * s) for c, s in zip(STAGE_CHANNELS, sides,
                                                              strict=True))
        w = cfg.fpn_width
        grpam += sum(c * w + w for c in STAGE_CHANNELS) + 4 * (9 * w * w + w)
        head_in = 4 * w
    head = head_in * 1024 + 1024 + 1024 * n_params + n_params
    detail_enc = RESNET50 + 2048 * 1024 + 1024 + 1024 * 128 + 128
    latent = 128 + sizes["exp"] + 3
    seed = (cfg.uv_size // 32) ** 2 * 128
    widths = (128, 128, 64, 64, 32, 16)
    decoder = latent * seed + seed + 2 * 128
    decoder += sum(9 * a * b + b + 2 * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    decoder += 9 * 16 + 1
    return backbone + grpam + head, detail_enc, decoder


@pytest.mark.parametrize("use_priors,use_grpam", [(False, False), (True, False), (False, True),
                                                  (True, True)])
def test_parameter_counts_of_the_ablations(load_config, use_priors, use_grpam):
    cfg = load_config("model")
    cfg.use_priors, cfg.use_grpam = use_priors, use_grpam
    sizes = param_sizes()
    net = abstract_network(cfg, sizes)
    coarse, detail_enc, decoder = _expected_counts(cfg, sizes)
    assert count_params(nnx.state(net.coarse, nnx.Param)) == coarse
    assert count_params(nnx.state(net.detail_encoder, nnx.Param)) == detail_enc
    assert count_params(nnx.state(net.detail_decoder, nnx.Param)) == decoder


def test_summary_reports_counts_and_shapes(load_config):
    cfg = load_config("model")
    text = summarize(cfg, param_sizes())
    coarse, detail_enc, decoder = _expected_counts(cfg, param_sizes())
    for n in (coarse, detail_enc, decoder, coarse + detail_enc + decoder):
        assert f"{n:,}" in text
    assert "E_c -> code (B, 236)" in text and "F_d -> displacement (B, 256, 256, 1)" in text
    table = ablation_table(cfg, param_sizes()).splitlines()
    assert len(table) == 5 and table[-1].split()[:3] == ["on", "on", "5"]


@pytest.fixture(scope="module")
def small(load_config):
    """A full network at 128 px (the smallest size where every RGA branch is non-degenerate
    with last_stride 1) with a 64-texel detail map, built once for this module."""
    cfg = load_config("model")
    cfg.image_size, cfg.uv_size = 128, 64
    sizes = param_sizes(20, 10, 10)
    graphdef, params, stats = nnx.split(build_network(cfg, sizes), nnx.Param, nnx.BatchStat)
    return cfg, sizes, graphdef, params, stats


def test_functional_apply_train_and_eval(small, rng):
    cfg, sizes, graphdef, params, stats = small
    x = jnp.asarray(rng.normal(size=(2, 128, 128, 5)), jnp.float32)

    code, new_stats = jax.jit(lambda p, s, x: apply(graphdef, p, s, "encode_coarse", x,
                                                    train=True))(params, stats, x)
    assert code.shape == (2, sum(sizes.values())) and np.all(np.isfinite(code))
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), stats["coarse"],
                                     new_stats["coarse"])
    assert all(jax.tree_util.tree_leaves(changed))  # every BatchNorm saw the batch
    eval_fn = jax.jit(lambda p, s, x: apply(graphdef, p, s, "encode_coarse", x, train=False))
    out1, same = eval_fn(params, new_stats, x)
    out2, _ = eval_fn(params, new_stats, x[:1])
    np.testing.assert_allclose(np.asarray(out1[:1]), np.asarray(out2), rtol=1e-4, atol=1e-5)
    jax.tree_util.tree_map(np.testing.assert_array_equal, same, new_stats)
    groups = decode_params(out1, sizes)
    assert groups["light"].shape == (2, 9, 3) and groups["pose"].shape == (2, 6)

    delta, _ = apply(graphdef, params, stats, "encode_detail", x[..., :3], train=False)
    disp, _ = apply(graphdef, params, stats, "decode_detail", delta, groups["exp"],
                    groups["pose"][:, 3:], train=False)
    assert delta.shape == (2, 128) and disp.shape == (2, 64, 64, 1)
    assert float(jnp.max(jnp.abs(disp))) <= cfg.displacement_scale


def test_gradients_reach_every_parameter(small, rng):
    _, _, graphdef, params, stats = small
    x = jnp.asarray(rng.normal(size=(2, 128, 128, 5)), jnp.float32)

    def loss(p, s):
        code, new_stats = apply(graphdef, p, s, "encode_coarse", x, train=True)
        return jnp.sum(code**2), new_stats

    (grads, _), _ = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(params, stats)
    grads = grads["coarse"]
    norms = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda g: float(jnp.abs(g).sum()),
                                                             grads))
    assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) == len(norms)


def test_wrong_input_shape_is_a_clear_error(small):
    _, _, graphdef, params, stats = small
    with pytest.raises(ValueError, match=r"built for \(B, 128, 128, 5\) inputs"):
        apply(graphdef, params, stats, "encode_coarse", jnp.zeros((1, 128, 128, 3)),
              train=False)


@pytest.mark.slow
def test_jit_forward_at_224_with_batch_2(load_config, rng):
    cfg = load_config("model")
    sizes = param_sizes()
    graphdef, params, stats = nnx.split(build_network(cfg, sizes), nnx.Param, nnx.BatchStat)
    x = jnp.asarray(rng.uniform(size=(2, 224, 224, 5)), jnp.float32)
    code, _ = jax.jit(lambda p, s, x: apply(graphdef, p, s, "encode_coarse", x,
                                            train=False))(params, stats, x)
    assert code.shape == (2, 236) and np.all(np.isfinite(code))
