"""Parameter counts and tensor shapes of the network, for ``jaxface model-summary``.

Built abstractly (``nnx.eval_shape``): nothing is initialised or computed, so a summary of the
full 224-pixel model takes seconds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models.network import Network, count_params
from jaxface.models.params import PARAM_GROUPS
from jaxface.models.priors import prior_channels


def _params(module) -> int:
    return count_params(nnx.state(module, nnx.Param))


def abstract_network(model_cfg, sizes: dict[str, int]) -> Network:
    """The network with shape-only parameters."""
    return nnx.eval_shape(lambda: Network(model_cfg, sizes, rngs=nnx.Rngs(0)))


def summarize(model_cfg, sizes: dict[str, int]) -> str:
    """A table of parameter counts per module and the shapes the network maps between."""
    net = abstract_network(model_cfg, sizes)
    coarse = net.coarse
    rows = [("E_c backbone (ResNet50)", _params(coarse.backbone))]
    if coarse.grpam is not None:
        for i, rga in enumerate(coarse.grpam.rga):
            rows.append((f"E_c GRPAM RGA-S/C after C{i + 2} ({rga.positions} positions)",
                         _params(rga)))
        rows.append(("E_c GRPAM FPN", _params(coarse.grpam.fpn)))
    rows += [("E_c head (FC)", _params(coarse.head)),
             ("E_c total", _params(coarse)),
             ("E_d (ResNet50 + FC)", _params(net.detail_encoder)),
             ("F_d (detail decoder)", _params(net.detail_decoder))]
    if net.expression_encoder is not None:
        rows.append(("E_expression (EMOCA's, ResNet50 + FC)", _params(net.expression_encoder)))
    rows.append(("network total", _params(net)))
    size = model_cfg.image_size
    channels = 3 + prior_channels(model_cfg.use_priors, model_cfg.landmark_channels)
    graphdef, params, stats = nnx.split(nnx.view(net, use_running_average=True), nnx.Param,
                                        nnx.BatchStat)

    def run(method, *shapes):
        def f(p, st, *args):
            return getattr(nnx.merge(graphdef, p, st), method)(*args)
        return jax.eval_shape(f, params, stats,
                              *(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes))

    code = run("encode_coarse", (1, size, size, channels))
    detail = run("encode_detail", (1, size, size, 3))
    disp = run("decode_detail", (1, model_cfg.detail_code_dim), (1, sizes["exp"]), (1, 3))
    width = max(len(name) for name, _ in rows)
    lines = [f"input  (B, {size}, {size}, {channels})  [RGB"
             + (f" + {channels - 4} landmark + 1 mask" if model_cfg.use_priors else "") + "]",
             f"PIM {'on' if model_cfg.use_priors else 'off'}, "
             f"GRPAM {'on' if model_cfg.use_grpam else 'off'}", ""]
    lines += [f"{name:<{width}}  {count:>12,}" for name, count in rows]
    groups = ", ".join(f"{g} {sizes[g]}" for g in PARAM_GROUPS)
    lines += ["", f"E_c -> code (B, {code.shape[-1]}): {groups}",
              f"E_d -> detail code (B, {detail.shape[-1]})",
              f"F_d -> displacement (B, {disp.shape[1]}, {disp.shape[2]}, {disp.shape[3]})"]
    if net.expression_encoder is not None:
        expression = run("encode_expression", (1, size, size, 3))
        replaced = ["expression"] + [{"jaw": "jaw", "global": "global rotation"}[part]
                                     for part in model_cfg.expression_encoder.split("_")[1:]]
        lines.append(f"E_expression -> (B, {expression.shape[-1]}): replaces E_c's "
                     f"{', '.join(replaced)}")
    return "\n".join(lines)


def ablation_table(model_cfg, sizes: dict[str, int]) -> str:
    """E_c's size under the paper's network switches (Table 3's PIM x GRPAM; LOSS does not
    change the network)."""
    lines = [f"{'PIM':<5}{'GRPAM':<7}{'input ch':>9}{'E_c params':>14}"]
    for use_priors in (False, True):
        for use_grpam in (False, True):
            cfg = model_cfg.copy_and_resolve_references()
            with cfg.unlocked():
                cfg.use_priors, cfg.use_grpam = use_priors, use_grpam
            net = abstract_network(cfg, sizes)
            lines.append(f"{'on' if use_priors else 'off':<5}{'on' if use_grpam else 'off':<7}"
                         f"{net.coarse.in_channels:>9}{_params(net.coarse):>14,}")
    return "\n".join(lines)
