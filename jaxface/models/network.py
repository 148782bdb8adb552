"""The whole regressor (E_c, E_d, F_d) as one NNX module, and its functional interface.

Training and inference use it functionally at the jit boundary::

    graphdef, params, batch_stats = nnx.split(build_network(cfg.model, sizes), nnx.Param,
                                              nnx.BatchStat)
    out, batch_stats = apply(graphdef, params, batch_stats, "encode_coarse", x, train=True)

so parameters are plain pytrees (``params["coarse"]``, ``params["detail_encoder"]``,
``params["detail_decoder"]``) that optimisers, checkpoints and exports handle directly.
"""

from __future__ import annotations

import jax
from flax import nnx

from jaxface.models.decoder import DetailDecoder, detail_latent
from jaxface.models.encoders import CoarseEncoder, ResNetEncoder
from jaxface.models.params import PARAM_GROUPS, expression_code_size
from jaxface.models.priors import prior_channels


class Network(nnx.Module):
    """E_c (coarse encoder), E_d (detail encoder) and F_d (detail decoder); with
    ``model.expression_encoder`` also EMOCA's expression encoder (a second ResNet50 regressor
    whose expression, and jaw and/or global rotation, replace E_c's)."""

    def __init__(self, model_cfg, sizes: dict[str, int], *, rngs: nnx.Rngs):
        in_channels = 3 + prior_channels(model_cfg.use_priors, model_cfg.landmark_channels)
        self.coarse = CoarseEncoder(
            in_channels, sum(sizes[g] for g in PARAM_GROUPS), model_cfg.image_size,
            use_grpam=model_cfg.use_grpam, last_stride=model_cfg.last_stride,
            fpn_width=model_cfg.fpn_width, cha_ratio=model_cfg.rga_cha_ratio,
            spa_ratio=model_cfg.rga_spa_ratio, down_ratio=model_cfg.rga_down_ratio,
            hidden=model_cfg.head_hidden, rngs=rngs)
        self.detail_encoder = ResNetEncoder(model_cfg.image_size, model_cfg.detail_code_dim,
                                            model_cfg.head_hidden, rngs=rngs)
        self.detail_decoder = DetailDecoder(
            model_cfg.detail_code_dim + sizes["exp"] + 3, model_cfg.uv_size,
            model_cfg.displacement_scale, model_cfg.decoder_bn_epsilon, rngs=rngs)
        mode = model_cfg.expression_encoder
        self.expression_encoder = nnx.data(None if mode == "none" else ResNetEncoder(
            model_cfg.image_size, expression_code_size(mode, sizes["exp"]),
            model_cfg.head_hidden, rngs=rngs))

    def encode_coarse(self, x_BxHxWxC: jax.Array) -> jax.Array:
        return self.coarse(x_BxHxWxC)

    def encode_expression(self, image_BxHxWx3: jax.Array) -> jax.Array:
        return self.expression_encoder(image_BxHxWx3)

    def encode_detail(self, image_BxHxWx3: jax.Array) -> jax.Array:
        return self.detail_encoder(image_BxHxWx3)

    def decode_detail(self, detail_code: jax.Array, expression: jax.Array,
                      jaw_pose: jax.Array) -> jax.Array:
        return self.detail_decoder(detail_latent(detail_code, expression, jaw_pose))


def build_network(model_cfg, sizes: dict[str, int], seed: int = 0) -> Network:
    """The network for a ``configs/model.py`` config and :func:`param_sizes`."""
    return Network(model_cfg, sizes, rngs=nnx.Rngs(seed))


def apply(graphdef: nnx.GraphDef, params: nnx.State, batch_stats: nnx.State, method: str,
          *args, train: bool) -> tuple[object, nnx.State]:
    """Runs ``Network.<method>(*args)`` as a pure function -> (output, batch statistics).

    ``train``: BatchNorm normalises with the batch's statistics and the returned statistics
    are updated (PyTorch's momentum 0.1); else the running statistics are used unchanged.

    Under ``jax.grad``, differentiate with respect to ``params`` and ``batch_stats`` together
    (``argnums=(0, 1)``, dropping the second gradient): NNX updates the statistics in place
    and refuses values from another trace level than the one they were created in.
    """
    net = nnx.merge(graphdef, params, batch_stats)
    net = nnx.view(net, use_running_average=not train)
    out = getattr(net, method)(*args)
    return out, nnx.state(net, nnx.BatchStat)


def sync_batch_norm(net: Network, axis_name: str) -> Network:
    """Makes every BatchNorm of ``net`` reduce its batch statistics over the mapped axis
    ``axis_name`` (in place; returns ``net``): under data parallelism each layer then
    normalises with the global batch's statistics, as on one device. The network can only
    be applied in training mode inside a ``shard_map`` over that axis afterwards."""
    for _, module in nnx.iter_modules(net):
        if isinstance(module, nnx.BatchNorm):
            module.axis_name = axis_name
    return net


def count_params(tree) -> int:
    """Number of scalars in a pytree of arrays (e.g. a module's nnx.Param state)."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))
