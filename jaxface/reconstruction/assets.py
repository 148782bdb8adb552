"""What a run needs of the face model besides the network: FLAME, the albedo space, the
renderer's topology, the parameter sizes and the UV regions — loaded once from the config.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxface import flame
from jaxface.assets import SOURCES, AssetError
from jaxface.flame.loading import _nearest_resize, load_fixed_displacement, load_uv_mask
from jaxface.models import param_sizes
from jaxface.render import FaceTopology, face_topology
from jaxface.render.uv import face_region_uv_masks

# UV region arrays a jaxface face-model .npz may carry (written by `jaxface export`).
UV_REGION_KEYS = ("uv_face_eye_mask", "uv_face_mask", "fixed_displacement")


@dataclasses.dataclass(frozen=True)
class FaceAssets:
    """The face model's arrays, a pytree: the jit-compiled steps take it as an argument (not
    a closed-over constant, which would bake a real albedo space's ~150 MB into every
    program); the parameter sizes are static metadata."""

    model: flame.FlameModel
    albedo: flame.AlbedoModel
    topology: FaceTopology
    group_sizes: tuple[tuple[str, int], ...]  # parameter group lengths (static)
    uv_face_eye_mask: jax.Array   # (S, S, 1) DECA's face-and-eye region: what the loss render
    #                               draws, and where the detail displacement applies
    uv_face_mask: jax.Array       # (S, S, 1) the face without the eyes: L_sym's V_uv
    fixed_displacement: jax.Array  # (S, S, 1) DECA's fixed displacement (zeros if not given)

    @property
    def sizes(self) -> dict[str, int]:
        """Parameter group lengths (:func:`~jaxface.models.params.param_sizes`)."""
        return dict(self.group_sizes)

    def _replace(self, **changes) -> FaceAssets:
        return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(
    FaceAssets,
    data_fields=["model", "albedo", "topology", "uv_face_eye_mask", "uv_face_mask",
                 "fixed_displacement"],
    meta_fields=["group_sizes"],
)


def _stored_uv_regions(flame_path: str | None, size: int) -> dict[str, np.ndarray]:
    """The UV region arrays kept in a jaxface ``.npz`` head (an exported model's)."""
    if flame_path is None or not str(flame_path).endswith(".npz"):
        return {}
    with np.load(flame_path, allow_pickle=False) as data:
        stored = {k: np.asarray(data[k], np.float32) for k in UV_REGION_KEYS if k in data.files}
    return {k: _nearest_resize(v[..., 0], size)[..., None] for k, v in stored.items()}


@functools.partial(jax.jit, static_argnames=("backend",))
def _derived_uv_masks(model: flame.FlameModel, faces_Tx3, uv_rast, backend: str):
    """:func:`face_region_uv_masks` of ``model``'s neutral head (one program, not ~100 eager
    ops each compiled on its own)."""
    neutral = flame.forward(model, jnp.zeros((1, model.n_shape)),
                            jnp.zeros((1, model.n_expression)), jnp.zeros((1, 15)))
    eyeball = jnp.sum(model.lbs_weights[:, 3:5], -1) > 0.5   # skinned to the eye joints
    return face_region_uv_masks(neutral.vertices[0], neutral.landmarks3d[0], faces_Tx3,
                                eyeball, uv_rast, backend=backend)


def uv_regions(face_model_cfg, model: flame.FlameModel, topology: FaceTopology,
               backend: str = "auto") -> dict[str, np.ndarray]:
    """The three UV arrays of :class:`FaceAssets`, in this order of preference: the files
    named in the config (DECA's ``uv_face_eye_mask.png``, ``uv_face_mask.png``,
    ``fixed_displacement_256.npy``), the arrays stored in a jaxface ``.npz`` head, and for
    the masks of a jaxface head without them, masks derived from the mesh
    (:func:`~jaxface.render.uv.face_region_uv_masks`). A real FLAME pickle needs DECA's two
    mask files (the error names them); the fixed displacement is zero unless given."""
    fm, size = face_model_cfg, topology.uv_size
    out = _stored_uv_regions(fm.flame_path, size)
    for kind, path in (("uv_face_eye_mask", fm.uv_face_eye_mask_path),
                       ("uv_face_mask", fm.uv_face_mask_path)):
        if path is not None:
            out[kind] = load_uv_mask(path, kind, size)
        elif kind not in out and fm.flame_path is not None and \
                not str(fm.flame_path).endswith(".npz"):
            raise AssetError(f"{fm.flame_path}: a FLAME pickle has no UV face regions; set "
                             f"face_model.{kind}_path (get it from: {SOURCES[kind]})")
    if fm.fixed_displacement_path is not None:
        out["fixed_displacement"] = load_fixed_displacement(fm.fixed_displacement_path, size)
    if "uv_face_eye_mask" not in out or "uv_face_mask" not in out:
        face_eye, face = _derived_uv_masks(model, topology.faces, topology.uv_rast,
                                           backend=backend)
        out.setdefault("uv_face_eye_mask", np.asarray(face_eye))
        out.setdefault("uv_face_mask", np.asarray(face))
    out.setdefault("fixed_displacement", np.zeros((size, size, 1), np.float32))
    return out


def face_model_arrays(assets: FaceAssets) -> dict[str, np.ndarray]:
    """What a model folder's ``face_model.npz`` holds (a jaxface ``.npz`` head): FLAME's
    arrays, the albedo space and the UV regions, as NumPy."""
    return assets.model.arrays() | {
        "albedo_mean": np.asarray(assets.albedo.mean),
        "albedo_basis": np.asarray(assets.albedo.basis),
        **{k: np.asarray(getattr(assets, k)) for k in UV_REGION_KEYS}}


def with_face_model_arrays(assets: FaceAssets, arrays: dict) -> FaceAssets:
    """``assets`` with FLAME, the albedo space and the UV regions taken from ``arrays``
    (:func:`face_model_arrays`' keys; e.g. the inputs of an exported function, so that its
    program does not hold the face model) and its derived topology kept. The arrays must
    have the shapes of ``assets``' own."""
    model = flame.with_file_arrays(assets.model, arrays)
    albedo = flame.AlbedoModel(arrays["albedo_mean"], arrays["albedo_basis"])
    return assets._replace(model=model, albedo=albedo,
                           **{k: arrays[k] for k in UV_REGION_KEYS})


def jit_with_assets(fn, assets: FaceAssets, **jit_kwargs):
    """``jax.jit(fn)`` for a ``fn`` whose last argument is the face assets, returned with
    ``assets`` bound: the arrays reach the compiled program as arguments (a real albedo
    space is ~150 MB; closed over, it would become a constant of every program)."""
    compiled = jax.jit(fn, **jit_kwargs)

    def bound(*args):
        return compiled(*args, assets)

    return bound


def load_assets(cfg) -> FaceAssets:
    """The assets of an experiment config (``face_model``, ``render``, ``model``)."""
    model, albedo = flame.load_face_model(cfg.face_model)
    sizes = param_sizes(cfg.face_model.n_shape, albedo.basis.shape[-1],
                        cfg.face_model.n_expression)
    topology = face_topology(model.faces, model.uvs, model.uv_faces, cfg.model.uv_size,
                             cfg.render.backend)
    regions = {k: jnp.asarray(v) for k, v in
               uv_regions(cfg.face_model, model, topology, cfg.render.backend).items()}
    return FaceAssets(model, albedo, topology, tuple(sizes.items()), **regions)
