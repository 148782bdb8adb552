"""Relation-aware global attention (Zhang et al., CVPR 2020): RGA-S then RGA-C, in Flax NNX.

Faithful to the official module (microsoft/Relation-Aware-Global-Attention-Networks,
``rga_modules.py``), in NHWC. For a feature x (B, h, w, C) with N = h w positions:

- RGA-S: theta, phi (1x1 conv + BN + ReLU, C -> C / cha_ratio) give the relation matrix
  G[i, j] = theta_i . phi_j (N x N). Each position i stacks its outgoing and incoming
  relations [G[i, :], G[:, i]] (2N values), embeds them (1x1 conv + BN + ReLU, 2N -> N /
  spa_ratio), prepends the channel-mean of its own embedded feature (gx: C -> C / cha_ratio),
  and a two-layer 1x1 head (-> (1 + N / spa_ratio) // down_ratio, BN, ReLU, -> 1, BN) gives
  a logit; x <- sigmoid(logit) x.
- RGA-C: the same on the transposed feature, channels as nodes and positions as their
  features: theta, phi: N -> N / spa_ratio, G (C x C), the relation embedding 2C -> C /
  cha_ratio, gx: N -> N / spa_ratio, head (1 + C / cha_ratio) // down_ratio -> 1; each
  channel is scaled by its sigmoid weight.

1x1 convolutions are ``nnx.Linear`` layers without bias on the last axis (the same map). The
relation embedding is computed in its exact low-rank form where that is cheaper (see
``RelationAttention``); the parameters are the official module's either way.
The number of positions N is fixed at construction, as in the original: the relation
embeddings' widths depend on it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxface.models.resnet import batch_norm


class Embed(nnx.Module):
    """1x1 conv (no bias) + BatchNorm + optional ReLU, on the last axis."""

    def __init__(self, in_ch: int, out_ch: int, relu: bool = True, *, rngs: nnx.Rngs):
        self.conv = nnx.Linear(in_ch, out_ch, use_bias=False, rngs=rngs)
        self.bn = batch_norm(out_ch, rngs=rngs)
        self.relu = relu

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.normalize(self.conv(x))

    def normalize(self, y: jax.Array) -> jax.Array:
        """BatchNorm (+ ReLU) of the convolution's output ``y``."""
        y = self.bn(y)
        return jax.nn.relu(y) if self.relu else y


class RelationAttention(nnx.Module):
    """One RGA branch: from N nodes' D-dim features, their pairwise relations and their own
    embedding, one attention logit per node (RGA-S: positions as nodes; RGA-C: channels)."""

    def __init__(self, n_nodes: int, node_dim: int, node_ratio: int, dim_ratio: int,
                 down_ratio: int, *, rngs: nnx.Rngs):
        inter_dim = node_dim // dim_ratio       # embedded node feature width
        inter_nodes = n_nodes // node_ratio     # embedded relation width
        hidden = (1 + inter_nodes) // down_ratio
        if min(inter_dim, inter_nodes, hidden) < 1:
            raise ValueError(
                f"RGA branch with {n_nodes} nodes of dimension {node_dim} degenerates (widths "
                f"{inter_dim}, {inter_nodes}, {hidden} with ratios {dim_ratio}, {node_ratio}, "
                f"{down_ratio}): the feature map is too small; use a larger input or "
                "last_stride = 1")
        self.theta = Embed(node_dim, inter_dim, rngs=rngs)
        self.phi = Embed(node_dim, inter_dim, rngs=rngs)
        self.gx = Embed(node_dim, inter_dim, rngs=rngs)
        self.gg = Embed(2 * n_nodes, inter_nodes, rngs=rngs)
        self.w1 = Embed(1 + inter_nodes, hidden, rngs=rngs)
        self.w2 = Embed(hidden, 1, relu=False, rngs=rngs)
        self.n_nodes = n_nodes
        # The relation embedding is linear in G before its BatchNorm, and G = theta phi^T has
        # rank <= d (the embedded width), so with gg's weight split [W_out; W_in] over the 2N
        # inputs, [G, G^T] W = theta (phi^T W_out) + phi (theta^T W_in): O(N d m) instead of
        # O(N^2 m), and no N x N matrix. The same numbers; used where it is cheaper (d < N/2:
        # RGA-S at C2..C4; the channel branches have d = N / spa_ratio but N = C is small).
        self.low_rank = 2 * inter_dim < n_nodes

    def __call__(self, nodes_BxNxD: jax.Array) -> jax.Array:
        """Attention logits (B, N, 1) for nodes (B, N, D)."""
        theta, phi = self.theta(nodes_BxNxD), self.phi(nodes_BxNxD)
        if self.low_rank:
            weight = self.gg.conv.kernel[...]                       # (2N, m): [W_out; W_in]
            w_out, w_in = weight[:self.n_nodes], weight[self.n_nodes:]
            relations = (
                jnp.einsum("bid,bdm->bim", theta, jnp.einsum("bjd,jm->bdm", phi, w_out))
                + jnp.einsum("bid,bdm->bim", phi, jnp.einsum("bjd,jm->bdm", theta, w_in)))
            embedded = self.gg.normalize(relations)
        else:
            relation = jnp.einsum("bid,bjd->bij", theta, phi)        # G[i, j]
            embedded = self.gg(jnp.concatenate([relation, jnp.swapaxes(relation, 1, 2)], -1))
        own = jnp.mean(self.gx(nodes_BxNxD), -1, keepdims=True)
        return self.w2(self.w1(jnp.concatenate([own, embedded], -1)))


class RGA(nnx.Module):
    """RGA-S followed by RGA-C on a (B, h, w, C) feature with h w = ``positions``."""

    def __init__(self, channels: int, positions: int, cha_ratio: int = 8, spa_ratio: int = 8,
                 down_ratio: int = 8, use_spatial: bool = True, use_channel: bool = True, *,
                 rngs: nnx.Rngs):
        self.spatial = nnx.data(
            RelationAttention(positions, channels, spa_ratio, cha_ratio, down_ratio, rngs=rngs)
            if use_spatial else None)
        self.channel = nnx.data(
            RelationAttention(channels, positions, cha_ratio, spa_ratio, down_ratio, rngs=rngs)
            if use_channel else None)
        self.positions = positions

    def attention(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """-> (output, spatial weights (B, h, w, 1), channel weights (B, 1, 1, C)); a
        disabled branch's weights are ones."""
        b, h, w, c = x_BxHxWxC.shape
        if h * w != self.positions:
            raise ValueError(f"this RGA module was built for {self.positions} positions and "
                             f"got a {h}x{w} feature map; RGA's relation embeddings fix the "
                             "spatial size at construction (build it for this input size)")
        x = x_BxHxWxC
        spatial = jnp.ones((b, h, w, 1), x.dtype)
        channel = jnp.ones((b, 1, 1, c), x.dtype)
        if self.spatial is not None:
            spatial = jax.nn.sigmoid(self.spatial(x.reshape(b, h * w, c))).reshape(b, h, w, 1)
            x = spatial * x
        if self.channel is not None:
            nodes = jnp.swapaxes(x.reshape(b, h * w, c), 1, 2)          # (B, C, N)
            channel = jax.nn.sigmoid(self.channel(nodes)).reshape(b, 1, 1, c)
            x = channel * x
        return x, spatial, channel

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        return self.attention(x_BxHxWxC)[0]
