"""What a run needs of the face model besides the network: FLAME, the albedo space, the
renderer's topology, the parameter sizes and the detail region — loaded once from the config.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxface import flame
from jaxface.models import param_sizes
from jaxface.render import FaceTopology, face_topology
from jaxface.render.uv import face_region_uv_mask


class FaceAssets(NamedTuple):
    model: flame.FlameModel
    albedo: flame.AlbedoModel
    topology: FaceTopology
    sizes: dict              # parameter group lengths (static)
    uv_face_mask: jax.Array  # (S, S, 1) where the detail displacement applies


def load_assets(cfg) -> FaceAssets:
    """The assets of an experiment config (``face_model``, ``render``, ``model``)."""
    if cfg.render.uv_size != cfg.model.uv_size:
        raise ValueError(f"render.uv_size ({cfg.render.uv_size}) must equal model.uv_size "
                         f"({cfg.model.uv_size}): the detail normals are drawn from F_d's map")
    model, albedo = flame.load_face_model(cfg.face_model)
    sizes = param_sizes(cfg.face_model.n_shape, albedo.basis.shape[-1],
                        cfg.face_model.n_expression)
    topology = face_topology(model.faces, model.uvs, model.uv_faces, cfg.render.uv_size,
                             cfg.render.backend)
    neutral = flame.forward(model, jnp.zeros((1, model.n_shape)),
                            jnp.zeros((1, model.n_expression)), jnp.zeros((1, 15)))
    mask = face_region_uv_mask(neutral.vertices[0], neutral.landmarks3d[0], topology.faces,
                               topology.uv_rast)
    return FaceAssets(model, albedo, topology, sizes, mask)
