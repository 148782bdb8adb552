"""The identity loss's face-recognition network, chosen by ``config.identity.backend``.

``dlib`` (default, offline: the weights ship with ``face-recognition-models``): 150 x 150
chips, 128-d descriptors. In training the 224 landmark crops are resized to 150, not
re-aligned with dlib's 5-point chip warp: both the input and the render go through the same
resize, so the descriptors compare like with like. ``vggface2`` (the paper's): DECA's
``resnet50_ft_weight.pkl``, 224 x 224 with a 10-pixel margin cut, 2048-d features. Either is
frozen and used functionally: ``net = identity_network(cfg)``, then ``net.apply(net.state,
images)`` inside jit (the weights are an argument, not constants baked into the program).
"""

from __future__ import annotations

import dataclasses

import jax
from flax import nnx

BACKENDS = ("dlib", "vggface2")


@dataclasses.dataclass(frozen=True)
class IdentityNetwork:
    """A frozen face-recognition network: ``apply(state, rgb_BxHxWx3 in [0, 1])``."""

    backend: str
    graphdef: nnx.GraphDef
    state: nnx.State

    def apply(self, state: nnx.State, rgb_BxHxWx3: jax.Array) -> jax.Array:
        net = nnx.merge(self.graphdef, state)
        if self.backend == "dlib":
            b = rgb_BxHxWx3.shape[0]
            chips = jax.image.resize(rgb_BxHxWx3, (b, 150, 150, 3), "bilinear") * 255.0
            return net(chips)
        from jaxface.losses.nets.vggface2 import identity_features

        return identity_features(net, rgb_BxHxWx3)

    def __call__(self, rgb_BxHxWx3: jax.Array) -> jax.Array:
        return self.apply(self.state, rgb_BxHxWx3)


def identity_network(identity_cfg) -> IdentityNetwork:
    """Loads the configured network (``identity.backend``, ``identity.weights_path``: None =
    the packaged dlib model; required for vggface2)."""
    backend = identity_cfg.backend
    if backend not in BACKENDS:
        raise ValueError(f"identity.backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "dlib":
        from jaxface.losses.nets.dlib_resnet import load_dlib_face_net

        net = load_dlib_face_net(identity_cfg.weights_path)
    else:
        from jaxface.assets import AssetError
        from jaxface.losses.nets.vggface2 import SOURCE, load_vggface2, vggface2_resnet50

        if not identity_cfg.weights_path:
            raise AssetError(f"identity.backend = 'vggface2' needs identity.weights_path "
                             f"(resnet50_ft_weight.pkl, from {SOURCE})")
        net = load_vggface2(vggface2_resnet50(rngs=nnx.Rngs(0)), identity_cfg.weights_path)
        net = nnx.view(net, use_running_average=True)
    graphdef, state = nnx.split(net)
    return IdentityNetwork(backend, graphdef, state)
