"""FLAME (Li et al. 2017) in pure ``jnp``: the model pytree, its loaders, and the forward pass.

>>> from jaxface import flame
>>> model = flame.synthetic_flame()             # or flame.load_flame("generic_model.pkl", ...)
>>> out = flame.forward(model, shape, expression, pose)   # out.vertices: (B, 5023, 3)
"""

from jaxface.flame.albedo import AlbedoModel, albedo_map, load_albedo
from jaxface.flame.forward import forward
from jaxface.flame.loading import (
    load_face_model,
    load_flame,
    load_landmark_embedding,
    save_flame_npz,
    save_smplx_flame,
)
from jaxface.flame.model import (
    JOINT_NAMES,
    FlameModel,
    FlameOutput,
    with_dtype,
    with_file_arrays,
)
from jaxface.flame.synthetic import synthetic_flame, synthetic_head_arrays

__all__ = [
    "JOINT_NAMES", "AlbedoModel", "FlameModel", "FlameOutput", "albedo_map", "forward",
    "load_albedo", "load_face_model", "load_flame", "load_landmark_embedding", "save_flame_npz",
    "save_smplx_flame", "synthetic_flame", "synthetic_head_arrays", "with_dtype",
    "with_file_arrays",
]
