"""The identity loss's face-recognition network, chosen by ``config.identity.backend``.

``dlib`` (default, offline: the weights ship with ``face-recognition-models``): 150 x 150
chips aligned to the face's landmarks exactly as dlib's ``compute_face_descriptor`` cuts them
(:mod:`jaxface.losses.nets.dlib_chip`; the photo and its render go through the same
alignment, from the photo's landmarks), 128-d descriptors. ``vggface2`` (the paper's): DECA's
``resnet50_ft_weight.pkl``, DECA's preprocessing (224 x 224 crops with a 10-pixel margin
cut), 2048-d features. Either is frozen and used functionally: ``net =
identity_network(cfg)``, then ``net.apply(net.state, images, landmarks)`` inside jit (the
weights are an argument, not constants baked into the program).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import nnx

BACKENDS = ("dlib", "vggface2")


@dataclasses.dataclass(frozen=True, eq=False)
class IdentityNetwork:
    """A frozen face-recognition network: ``apply(state, rgb_BxHxWx3 in [0, 1], landmarks
    (B, 68, 2) pixels)``."""

    backend: str
    graphdef: nnx.GraphDef
    state: nnx.State
    chip_fit: np.ndarray | None = None   # dlib: the (4, 136) chip fit (dlib_chip)

    def apply(self, state: nnx.State, rgb_BxHxWx3: jax.Array,
              landmarks_Bx68x2: jax.Array) -> jax.Array:
        net = nnx.merge(self.graphdef, state)
        if self.backend == "dlib":
            from jaxface.losses.nets.dlib_chip import extract_chips

            chips = extract_chips(rgb_BxHxWx3 * 255.0, landmarks_Bx68x2,
                                  self.chip_fit.astype(rgb_BxHxWx3.dtype))
            return net(chips)
        from jaxface.losses.nets.vggface2 import identity_features

        return identity_features(net, rgb_BxHxWx3)

    def __call__(self, rgb_BxHxWx3: jax.Array, landmarks_Bx68x2: jax.Array) -> jax.Array:
        return self.apply(self.state, rgb_BxHxWx3, landmarks_Bx68x2)


def identity_network(identity_cfg) -> IdentityNetwork:
    """Loads the configured network (``identity.backend``, ``identity.weights_path``: None =
    the packaged dlib model; required for vggface2)."""
    backend = identity_cfg.backend
    if backend not in BACKENDS:
        raise ValueError(f"identity.backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "dlib":
        from jaxface.losses.nets.dlib_chip import chip_fit_matrix
        from jaxface.losses.nets.dlib_resnet import load_dlib_face_net

        graphdef, state = nnx.split(load_dlib_face_net(identity_cfg.weights_path))
        return IdentityNetwork(backend, graphdef, state, chip_fit_matrix())
    from jaxface.assets import AssetError
    from jaxface.losses.nets.vggface2 import SOURCE, load_vggface2, vggface2_resnet50

    if not identity_cfg.weights_path:
        raise AssetError(f"identity.backend = 'vggface2' needs identity.weights_path "
                         f"(resnet50_ft_weight.pkl, from {SOURCE})")
    net = load_vggface2(vggface2_resnet50(rngs=nnx.Rngs(0)), identity_cfg.weights_path)
    graphdef, state = nnx.split(nnx.view(net, use_running_average=True))
    return IdentityNetwork(backend, graphdef, state)
