"""Loading FLAME-format models: the real FLAME pickle (+ DECA's landmark embedding and UV
template) or jaxface's own ``.npz``; and writing the ``.npz``."""

from __future__ import annotations

import os
import pickle
import zipfile

import jax.numpy as jnp
import numpy as np

from jaxface.assets import SOURCES, AssetError, require_file
from jaxface.flame.albedo import AlbedoModel, load_albedo
from jaxface.flame.model import FlameModel, model_from_arrays
from jaxface.flame.pickle_compat import ChumpyObject, load_object_npy, load_pickle

# FLAME 2020/2023 pickles hold 300 identity then 100 expression components in `shapedirs`.
FLAME_N_SHAPE_TOTAL = 300
FLAME_N_EXPRESSION_TOTAL = 100
_PICKLE_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
                "f")
_EMBEDDING_KEYS = {  # DECA's key -> (FlameModel field, shape)
    "static_lmk_faces_idx": ("static_lmk_faces", (51,)),
    "static_lmk_bary_coords": ("static_lmk_bary", (51, 3)),
    "dynamic_lmk_faces_idx": ("dynamic_lmk_faces", (79, 17)),
    "dynamic_lmk_bary_coords": ("dynamic_lmk_bary", (79, 17, 3)),
    "full_lmk_faces_idx": ("full_lmk_faces", (68,)),
    "full_lmk_bary_coords": ("full_lmk_bary", (68, 3)),
}


def load_flame(path: str | os.PathLike, landmark_embedding: str | os.PathLike | None = None,
               n_shape: int = 100, n_expression: int = 50,
               uv_template: str | os.PathLike | None = None) -> FlameModel:
    """Loads a FLAME model.

    Args:
      path: FLAME's ``generic_model.pkl`` (chumpy pickle, read without chumpy) or a jaxface
        ``.npz`` (``jaxface flame-asset``).
      landmark_embedding: DECA's ``landmark_embedding.npy`` (read without torch). Required with a
        pickle; with an ``.npz`` it replaces the embedding stored in the file.
      n_shape, n_expression: how many identity / expression components to keep.
      uv_template: an OBJ with FLAME's UV layout (DECA's ``head_template.obj``). Required with a
        pickle, which has no UVs; with an ``.npz`` it replaces the stored UVs.

    Raises:
      AssetError: a file is missing, truncated, or has a missing key or a wrongly shaped array
        (the message names the file, the key and the expected shape).
    """
    path = require_file(path, "flame")
    if str(path).endswith(".npz"):
        arrays = _read_npz(path)
        n_shape_total = arrays["shapedirs"].shape[-1]
        n_expr_total = arrays["exprdirs"].shape[-1]
    else:
        arrays = _read_flame_pickle(path)
        n_shape_total, n_expr_total = FLAME_N_SHAPE_TOTAL, FLAME_N_EXPRESSION_TOTAL
        for arg, kind in ((landmark_embedding, "landmark_embedding"), (uv_template, "uv_template")):
            if arg is None:
                raise AssetError(f"{path}: a FLAME pickle has no {kind.replace('_', ' ')}; pass "
                                 f"{kind}=... (get it from: {SOURCES[kind]})")
    if not 0 < n_shape <= n_shape_total or not 0 < n_expression <= n_expr_total:
        raise AssetError(f"{path}: asked for {n_shape} shape / {n_expression} expression "
                         f"components, the file has {n_shape_total} / {n_expr_total}")
    arrays["shapedirs"] = arrays["shapedirs"][..., :n_shape]
    arrays["exprdirs"] = arrays["exprdirs"][..., :n_expression]
    if landmark_embedding is not None:
        arrays.update(load_landmark_embedding(landmark_embedding))
    if uv_template is not None:
        arrays["uvs"], arrays["uv_faces"] = load_obj_uvs(uv_template)
    return model_from_arrays(arrays, source=str(path))


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise AssetError(f"{path}: not a readable .npz file (truncated or corrupt?): {e}") from e


def _unpickle_dict(path: str, reader, what: str) -> dict:
    """Runs ``reader`` on the open file; any decoding failure becomes an AssetError."""
    try:
        with open(path, "rb") as f:
            raw = reader(f)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as e:
        raise AssetError(f"{path}: not a readable {what} (truncated or corrupt?): "
                         f"{type(e).__name__}: {e}") from e
    if not isinstance(raw, dict):
        raise AssetError(f"{path}: expected a pickled dict, found {type(raw).__name__}")
    return raw


def _read_flame_pickle(path: str) -> dict[str, np.ndarray]:
    raw = _unpickle_dict(path, load_pickle, "FLAME pickle")
    missing = [k for k in _PICKLE_KEYS if k not in raw]
    if missing:
        raise AssetError(f"{path}: missing key(s) {missing}; FLAME pickles hold {_PICKLE_KEYS}")
    derived = [k for k in _PICKLE_KEYS if isinstance(raw[k], ChumpyObject)]
    if derived:
        raise AssetError(f"{path}: key(s) {derived} are chumpy expressions, not stored arrays; "
                         "evaluate them once with chumpy and save the arrays")
    shapedirs = np.asarray(raw["shapedirs"])
    n_total = FLAME_N_SHAPE_TOTAL + FLAME_N_EXPRESSION_TOTAL
    if shapedirs.ndim != 3 or shapedirs.shape[1:] != (3, n_total):
        raise AssetError(f"{path}: key 'shapedirs' has shape {shapedirs.shape}, expected "
                         f"(V, 3, {n_total}) = {FLAME_N_SHAPE_TOTAL} shape + "
                         f"{FLAME_N_EXPRESSION_TOTAL} expression components")
    kintree = np.asarray(raw["kintree_table"]).astype(np.int64)
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise AssetError(f"{path}: key 'kintree_table' has shape {kintree.shape}, expected (2, J)")
    column_of_id = {int(i): c for c, i in enumerate(kintree[1])}
    parents = [-1] + [column_of_id.get(int(p), -2) for p in kintree[0, 1:]]
    return {
        "v_template": np.asarray(raw["v_template"]),
        "shapedirs": shapedirs[..., :FLAME_N_SHAPE_TOTAL],
        "exprdirs": shapedirs[..., FLAME_N_SHAPE_TOTAL:],
        "posedirs": np.asarray(raw["posedirs"]),
        "j_regressor": np.asarray(raw["J_regressor"]),
        "lbs_weights": np.asarray(raw["weights"]),
        "faces": np.asarray(raw["f"]).astype(np.int64),
        "parents": np.asarray(parents),
    }


def load_landmark_embedding(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads DECA's ``landmark_embedding.npy`` (a pickled dict of arrays and torch tensors;
    torch is not needed) -> the six landmark fields of :class:`FlameModel`."""
    path = require_file(path, "landmark_embedding")
    raw = _unpickle_dict(path, load_object_npy, "landmark embedding")
    out = {}
    for key, (field, shape) in _EMBEDDING_KEYS.items():
        if key not in raw:
            raise AssetError(f"{path}: missing key {key!r}; expected {list(_EMBEDDING_KEYS)}")
        value = np.asarray(raw[key])
        if value.size != int(np.prod(shape)):
            raise AssetError(f"{path}: key {key!r} has shape {value.shape}, expected {shape}")
        out[field] = value.reshape(shape)  # DECA stores some of them with a leading 1
    return out


def load_obj_uvs(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Texture coordinates ``vt`` (T, 2) and per-face UV indices (F, 3) of a triangle OBJ."""
    path = require_file(path, "uv_template")
    uvs, uv_faces = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("vt "):
                uvs.append([float(t) for t in line.split()[1:3]])
            elif line.startswith("f "):
                corners = line.split()[1:]
                if len(corners) != 3 or any(c.count("/") < 1 for c in corners):
                    raise AssetError(f"{path}: faces must be triangles with UV indices (v/vt)")
                uv_faces.append([int(c.split("/")[1]) - 1 for c in corners])
    if not uvs or not uv_faces:
        raise AssetError(f"{path}: no 'vt' texture coordinates or no faces found")
    return np.asarray(uvs, np.float32), np.asarray(uv_faces, np.int64)


def save_flame_npz(path: str | os.PathLike, model: FlameModel,
                   extra: dict[str, np.ndarray] | None = None) -> None:
    """Writes ``model`` (and ``extra`` arrays, e.g. an albedo model) as a jaxface ``.npz``,
    atomically: a killed write never leaves a half-written file under ``path``."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".partial.npz"
    try:
        np.savez(tmp, **(model.arrays() | (extra or {})))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _padded(dirs_Vx3xK: np.ndarray, k: int) -> np.ndarray:
    """A blend-shape basis with zero components appended up to ``k``."""
    return np.pad(dirs_Vx3xK, ((0, 0), (0, 0), (0, k - dirs_Vx3xK.shape[-1])))


def save_smplx_flame(folder: str | os.PathLike, model: FlameModel) -> None:
    """Writes ``model`` in the layout of smplx's FLAME layer (``smplx.FLAME(model_path=
    folder, num_betas=S, num_expression_coeffs=E, use_face_contour=True)``), for tools built
    on smplx: ``FLAME_NEUTRAL.pkl`` (FLAME 2020's 300 identity then 100 expression components,
    the model's own first, zeros after them), ``flame_static_embedding.pkl`` and
    ``flame_dynamic_embedding.npy``. smplx bins
    the contour by -yaw where DECA (and jaxface) bin +yaw: the dynamic table is reordered so
    that both pick the same contour for a head turned by the root joint."""
    import scipy.sparse

    a = model.arrays()
    os.makedirs(folder, exist_ok=True)
    f64 = lambda k: a[k].astype(np.float64)  # noqa: E731
    parents = np.asarray(model.parents, np.int64)
    with open(os.path.join(folder, "FLAME_NEUTRAL.pkl"), "wb") as f:
        pickle.dump({
            "v_template": f64("v_template"),
            "shapedirs": np.concatenate([_padded(f64("shapedirs"), FLAME_N_SHAPE_TOTAL),
                                         _padded(f64("exprdirs"), FLAME_N_EXPRESSION_TOTAL)],
                                        -1),
            "posedirs": f64("posedirs"),
            "J_regressor": scipy.sparse.csc_matrix(f64("j_regressor")),
            "weights": f64("lbs_weights"),
            # chumpy's layout: the root's parent is uint32's -1.
            "kintree_table": np.stack([np.where(parents < 0, 2 ** 32 - 1, parents),
                                       np.arange(len(parents))]),
            "f": a["faces"].astype(np.int64),
        }, f)
    with open(os.path.join(folder, "flame_static_embedding.pkl"), "wb") as f:
        pickle.dump({"lmk_face_idx": a["static_lmk_faces"].astype(np.int64),
                     "lmk_b_coords": f64("static_lmk_bary")}, f)
    n_bins = a["dynamic_lmk_faces"].shape[0]
    half = (n_bins - 1) // 2              # bins 0..half: yaw 0..half; then -1..-half
    yaw = np.where(np.arange(n_bins) <= half, np.arange(n_bins), half - np.arange(n_bins))
    ours = np.where(-yaw >= 0, -yaw, half + yaw)
    np.save(os.path.join(folder, "flame_dynamic_embedding.npy"),
            {"lmk_face_idx": a["dynamic_lmk_faces"][ours].astype(np.int64),
             "lmk_b_coords": f64("dynamic_lmk_bary")[ours]}, allow_pickle=True)


def load_face_model(cfg) -> tuple[FlameModel, AlbedoModel]:
    """The FLAME model and albedo model named by a ``configs/face_model.py`` config.

    With no ``flame_path`` the synthetic head is generated; otherwise every file is loaded
    from its configured path. The albedo comes from ``albedo_path`` or, when that is unset,
    from the head's own ``.npz`` (a real FLAME pickle has none: then ``albedo_path`` is
    required). ``n_albedo`` is capped at the number of components the albedo file holds.
    """
    from jaxface.flame import synthetic

    if cfg.flame_path is None:
        model = synthetic.synthetic_flame(cfg.synthetic_seed, cfg.n_shape, cfg.n_expression)
        arrays = synthetic.synthetic_head_arrays(cfg.synthetic_seed)
        albedo = AlbedoModel(jnp.asarray(arrays["albedo_mean"]),
                             jnp.asarray(arrays["albedo_basis"]))
    else:
        model = load_flame(cfg.flame_path, cfg.landmark_embedding_path, cfg.n_shape,
                           cfg.n_expression, cfg.uv_template_path)
        albedo = None
    if cfg.albedo_path is not None:
        albedo = load_albedo(cfg.albedo_path)
    elif albedo is None:
        if not str(cfg.flame_path).endswith(".npz"):
            raise AssetError(f"{cfg.flame_path} has no albedo model; set "
                             f"face_model.albedo_path (get it from: {SOURCES['albedo']})")
        albedo = load_albedo(cfg.flame_path)
    k = min(cfg.n_albedo, albedo.basis.shape[-1])
    return model, AlbedoModel(albedo.mean, albedo.basis[..., :k])


def _nearest_resize(image_HxW: np.ndarray, size: int) -> np.ndarray:
    """PyTorch's ``interpolate(mode="nearest")`` to size x size: source index floor(i H / S)
    (DECA resizes its UV masks this way)."""
    rows = (np.arange(size) * image_HxW.shape[0]) // size
    cols = (np.arange(size) * image_HxW.shape[1]) // size
    return image_HxW[rows][:, cols]


def load_uv_mask(path: str | os.PathLike, kind: str, size: int) -> np.ndarray:
    """A UV region mask image (DECA's ``uv_face_eye_mask.png`` / ``uv_face_mask.png``: row 0
    at v = 1, channel 0, white = inside) -> (size, size, 1) float32 in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    path = require_file(path, kind)
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise AssetError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e
    channel = arr if arr.ndim == 2 else arr[..., 0]
    if channel.shape[0] != channel.shape[1]:
        raise AssetError(f"{path}: a UV mask must be square, got {channel.shape}")
    scale = 65535.0 if channel.dtype == np.uint16 else 255.0 if channel.dtype == np.uint8 else 1.0
    return _nearest_resize(channel.astype(np.float32) / scale, size)[..., None]


def load_fixed_displacement(path: str | os.PathLike, size: int) -> np.ndarray:
    """DECA's ``fixed_displacement_256.npy`` (a square UV map, row 0 at v = 1, in FLAME units)
    -> (size, size, 1) float32."""
    path = require_file(path, "fixed_displacement")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise AssetError(f"{path}: not a readable .npy file ({e})") from e
    arr = np.squeeze(np.asarray(arr, np.float32))
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise AssetError(f"{path}: expected a square (S, S) displacement map, got {arr.shape}")
    if arr.shape[0] != size:
        from PIL import Image

        arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR))
    return arr[..., None]
