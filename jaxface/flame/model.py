"""The FLAME model as a pytree of arrays, and the shapes every FLAME-format file must have."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.assets import AssetError

# Joint order of FLAME's kinematic tree, and of the 15 pose values (5 axis-angle triples).
JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")
NECK, JAW = 1, 2
FLAME_PARENTS = (-1, 0, 1, 1, 1)
N_CONTOUR_BINS = 79  # yaw in whole degrees, -39..39, DECA's bin layout (see landmarks.py)


@dataclasses.dataclass(frozen=True)
class FlameModel:
    """FLAME's arrays. ``V`` vertices, ``F`` triangles, ``J`` joints, ``T`` UV coordinates.

    Attributes:
      v_template: (V, 3) rest-pose template.
      shapedirs: (S, V, 3) identity blend shapes, component-major: ``shapedirs[k]`` is the
        k-th displacement field (scaled PCA basis: beta ~ N(0, 1)). FLAME's files hold them
        as (V, 3, S); they are moved once here (and back by :meth:`arrays`) so that a blend is
        one (B, S) x (S, V*3) product: from (V, 3, S), XLA's CPU backend transposed every
        basis on every call (~7 ms of FLAME's 26 ms forward+backward at B = 64).
      exprdirs: (E, V, 3) expression blend shapes, component-major.
      posedirs: (9*(J-1), V, 3) pose correctives, component-major, driven by (R - I) of the
        non-root joints, flattened joint-major then row-major, as in FLAME's
        ``generic_model.pkl``.
      j_regressor: (J, V) dense joint regressor.
      lbs_weights: (V, J) skinning weights, rows sum to 1.
      faces: (F, 3) int32 triangle vertex indices, counter-clockwise seen from outside.
      uvs: (T, 2) texture coordinates in [0, 1], v pointing up (OBJ convention).
      uv_faces: (F, 3) int32 indices into ``uvs``, one triple per triangle of ``faces``.
      static_lmk_faces, static_lmk_bary: (51,), (51, 3) landmarks 17..67 of the 68-point scheme.
      dynamic_lmk_faces, dynamic_lmk_bary: (79, 17), (79, 17, 3) contour landmarks 0..16 for
        each yaw bin (DECA's layout: bins 0..39 for yaw 0..39 degrees, 40..78 for -1..-39).
      full_lmk_faces, full_lmk_bary: (68,), (68, 3) all 68 landmarks on fixed triangles.
      parents: kinematic tree, ``parents[j]`` is the parent joint of ``j`` (-1 for the root).
    """

    v_template: jax.Array
    shapedirs: jax.Array
    exprdirs: jax.Array
    posedirs: jax.Array
    j_regressor: jax.Array
    lbs_weights: jax.Array
    faces: jax.Array
    uvs: jax.Array
    uv_faces: jax.Array
    static_lmk_faces: jax.Array
    static_lmk_bary: jax.Array
    dynamic_lmk_faces: jax.Array
    dynamic_lmk_bary: jax.Array
    full_lmk_faces: jax.Array
    full_lmk_bary: jax.Array
    parents: tuple[int, ...] = FLAME_PARENTS

    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def n_shape(self) -> int:
        return self.shapedirs.shape[0]

    @property
    def n_expression(self) -> int:
        return self.exprdirs.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """Copies of the model's arrays as NumPy in FLAME's file layout (what
        :func:`model_from_arrays` takes: the bases (V, 3, K)), keyed by field name
        (``parents`` included)."""
        out = {f.name: np.array(getattr(self, f.name)) for f in dataclasses.fields(self)}
        for key in _BASES:
            out[key] = np.ascontiguousarray(np.moveaxis(out[key], 0, -1))
        out["parents"] = np.asarray(self.parents, np.int32)
        return out


jax.tree_util.register_dataclass(
    FlameModel,
    data_fields=[f.name for f in dataclasses.fields(FlameModel) if f.name != "parents"],
    meta_fields=["parents"],
)


class FlameOutput(NamedTuple):
    """What :func:`jaxface.flame.forward` returns.

    Attributes:
      vertices: (B, V, 3) posed mesh.
      joints: (B, J, 3) posed joint locations.
      landmarks3d: (B, 68, 3) the 68 image landmarks in 3D, contour points 0..16 chosen by the
        head's yaw (project these for the 2D keypoint loss, as DECA's ``landmarks2d``).
      landmarks3d_static: (B, 68, 3) the full 68-point embedding on fixed triangles (for 3D
        evaluation; DECA's ``landmarks3d``).
    """

    vertices: jax.Array
    joints: jax.Array
    landmarks3d: jax.Array
    landmarks3d_static: jax.Array


def expected_shapes(n_vertices: int, n_faces: int, n_uvs: int, n_joints: int,
                    n_shape: int, n_expression: int) -> dict[str, tuple[int, ...]]:
    """Shape of every array of a FLAME-format file (the bases in the file's (V, 3, K)
    layout), for validating files of any FLAME-like size."""
    return {
        "v_template": (n_vertices, 3),
        "shapedirs": (n_vertices, 3, n_shape),
        "exprdirs": (n_vertices, 3, n_expression),
        "posedirs": (n_vertices, 3, 9 * (n_joints - 1)),
        "j_regressor": (n_joints, n_vertices),
        "lbs_weights": (n_vertices, n_joints),
        "faces": (n_faces, 3),
        "uvs": (n_uvs, 2),
        "uv_faces": (n_faces, 3),
        "static_lmk_faces": (51,),
        "static_lmk_bary": (51, 3),
        "dynamic_lmk_faces": (N_CONTOUR_BINS, 17),
        "dynamic_lmk_bary": (N_CONTOUR_BINS, 17, 3),
        "full_lmk_faces": (68,),
        "full_lmk_bary": (68, 3),
        "parents": (n_joints,),
    }


_INT_FIELDS = ("faces", "uv_faces", "static_lmk_faces", "dynamic_lmk_faces", "full_lmk_faces")
_BASES = ("shapedirs", "exprdirs", "posedirs")   # (V, 3, K) in files, (K, V, 3) in FlameModel


def model_from_arrays(arrays: dict[str, np.ndarray], source: str = "arrays") -> FlameModel:
    """Validates a dict of arrays (keys as :class:`FlameModel` fields, the bases in FLAME's
    (V, 3, K) file layout) and builds the model.

    Raises:
      AssetError: naming the missing key, or the key whose shape or contents are wrong and what
        was expected. ``source`` (a file name) is quoted in the message.
    """
    fields = [f.name for f in dataclasses.fields(FlameModel)]
    missing = [k for k in fields if k not in arrays]
    if missing:
        raise AssetError(f"{source}: missing key(s) {missing}; a FLAME model needs {fields}")
    v, f = np.shape(arrays["v_template"])[0], np.shape(arrays["faces"])[0]
    shapes = expected_shapes(v, f, np.shape(arrays["uvs"])[0], np.shape(arrays["parents"])[0],
                             np.shape(arrays["shapedirs"])[-1], np.shape(arrays["exprdirs"])[-1])
    for key, want in shapes.items():
        got = tuple(np.shape(arrays[key]))
        if got != want:
            raise AssetError(f"{source}: key {key!r} has shape {got}, expected {want}")
    parents = tuple(int(p) for p in np.asarray(arrays["parents"]))
    if parents[0] != -1 or any(not 0 <= p < j for j, p in enumerate(parents) if j > 0):
        raise AssetError(f"{source}: key 'parents' = {parents} is not a kinematic tree with the "
                         "root first and every parent before its child")
    for key in ("faces", "static_lmk_faces", "dynamic_lmk_faces", "full_lmk_faces"):
        idx = np.asarray(arrays[key])
        bound = v if key == "faces" else f
        if idx.size and (idx.min() < 0 or idx.max() >= bound):
            raise AssetError(f"{source}: key {key!r} has indices outside [0, {bound})")
    for key in fields:
        if key != "parents" and not np.all(np.isfinite(np.asarray(arrays[key], np.float64))):
            raise AssetError(f"{source}: key {key!r} contains NaN or Inf")
    values = {}
    for key in fields:
        if key == "parents":
            continue
        dtype = jnp.int32 if key in _INT_FIELDS else jnp.float32
        values[key] = jnp.asarray(_in_model_layout(key, np.asarray(arrays[key])), dtype)
    return FlameModel(**values, parents=parents)


def with_file_arrays(model: FlameModel, arrays: dict) -> FlameModel:
    """``model`` with every array field taken from ``arrays`` in FLAME's file layout (what
    :meth:`FlameModel.arrays` gives; NumPy or traced, e.g. the inputs of an exported
    function), ``parents`` kept. The arrays must have the shapes of ``model``'s own."""
    fields = [f.name for f in dataclasses.fields(FlameModel) if f.name != "parents"]
    return dataclasses.replace(model, **{k: _in_model_layout(k, arrays[k]) for k in fields})


def _in_model_layout(key: str, value):
    """A field's array from FLAME's file layout: the bases (V, 3, K) -> (K, V, 3)."""
    return jnp.moveaxis(value, -1, 0) if key in _BASES else value


def with_dtype(model: FlameModel, dtype) -> FlameModel:
    """The model with its floating arrays cast to ``dtype`` (e.g. float64 under x64)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, model)
