import importlib.util
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from jaxface import flame
from jaxface.assets import AssetError


def _fake_module(monkeypatch, name: str, **attrs):
    module = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__ = name
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


class Ch:
    """Pickles like chumpy's Ch: its state is its __dict__, the array under 'x'."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None


class MatVecMult:
    """Pickles like a chumpy expression (e.g. FLAME's `J`): state without 'x'."""

    def __init__(self, a):
        self.a = a
        self._dirty_vars = set()


class LegacyCsc:
    """Pickles like scipy < 1.8's scipy.sparse.csc.csc_matrix."""

    def __init__(self, dense):
        m = scipy.sparse.csc_matrix(dense)
        self._shape, self.data, self.indices, self.indptr = m.shape, m.data, m.indices, m.indptr
        self.maxprint = 50


def write_flame_pickle(path, arrays, monkeypatch, legacy_sparse=False, drop=None, change=None):
    """A FLAME-format pickle as FLAME 2020 ships it, written without chumpy installed."""
    LegacyCsc.__name__ = LegacyCsc.__qualname__ = "csc_matrix"
    with monkeypatch.context() as m:
        _fake_module(m, "chumpy")
        _fake_module(m, "chumpy.ch", Ch=Ch)
        _fake_module(m, "chumpy.ch_ops", MatVecMult=MatVecMult)
        _fake_module(m, "scipy.sparse.csc", csc_matrix=LegacyCsc)
        kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64)
        j_reg = (LegacyCsc if legacy_sparse else scipy.sparse.csc_matrix)(arrays["j_regressor"])
        data = {
            "v_template": Ch(arrays["v_template"].astype(np.float64)),
            "shapedirs": Ch(np.concatenate([arrays["shapedirs"], arrays["exprdirs"]], -1)),
            "posedirs": Ch(arrays["posedirs"]),
            "J_regressor": j_reg,
            "weights": Ch(arrays["lbs_weights"]),
            "kintree_table": kintree,
            "f": arrays["faces"].astype(np.uint32),
            "J": MatVecMult(Ch(arrays["v_template"])),  # unused, and not an array
            "bs_style": "lbs", "bs_type": "lrotmin",
        }
        for key in drop or ():
            del data[key]
        data.update(change or {})
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=2)
    LegacyCsc.__name__ = LegacyCsc.__qualname__ = "LegacyCsc"


def write_obj(path, arrays):
    with open(path, "w") as f:
        f.writelines(f"v {x} {y} {z}\n" for x, y, z in arrays["v_template"])
        f.writelines(f"vt {u} {v}\n" for u, v in arrays["uvs"])
        for tri, uvt in zip(arrays["faces"] + 1, arrays["uv_faces"] + 1, strict=True):
            f.write("f " + " ".join(f"{a}/{b}" for a, b in zip(tri, uvt, strict=True)) + "\n")


def embedding_dict(arrays, as_tensor=lambda a: a):
    return {
        "static_lmk_faces_idx": arrays["static_lmk_faces"].astype(np.int64),
        "static_lmk_bary_coords": arrays["static_lmk_bary"],
        "dynamic_lmk_faces_idx": as_tensor(arrays["dynamic_lmk_faces"].astype(np.int64)),
        "dynamic_lmk_bary_coords": as_tensor(arrays["dynamic_lmk_bary"]),
        "full_lmk_faces_idx": arrays["full_lmk_faces"][None].astype(np.int64),
        "full_lmk_bary_coords": arrays["full_lmk_bary"][None],
    }


@pytest.fixture
def flame_files(tmp_path, head_arrays, monkeypatch):
    pkl, obj, emb = tmp_path / "generic_model.pkl", tmp_path / "head.obj", tmp_path / "lmk.npy"
    write_flame_pickle(pkl, head_arrays, monkeypatch)
    write_obj(obj, head_arrays)
    np.save(emb, embedding_dict(head_arrays), allow_pickle=True)
    return pkl, obj, emb


def _no_chumpy_no_torch(monkeypatch):
    assert importlib.util.find_spec("chumpy") is None, "chumpy must not be installed here"
    monkeypatch.setitem(sys.modules, "chumpy", None)  # any import of them now fails
    monkeypatch.setitem(sys.modules, "torch", None)


def _assert_same_model(loaded, reference):
    for key, value in reference.arrays().items():
        np.testing.assert_allclose(np.asarray(value), loaded.arrays()[key], atol=1e-7,
                                   err_msg=key)


@pytest.mark.parametrize("legacy_sparse", [False, True])
def test_load_flame_pickle_without_chumpy(flame_files, model, monkeypatch, legacy_sparse,
                                          head_arrays, tmp_path):
    pkl, obj, emb = flame_files
    if legacy_sparse:
        write_flame_pickle(pkl, head_arrays, monkeypatch, legacy_sparse=True)
    _no_chumpy_no_torch(monkeypatch)
    loaded = flame.load_flame(pkl, landmark_embedding=emb, uv_template=obj)
    _assert_same_model(loaded, model)
    assert loaded.parents == (-1, 0, 1, 1, 1)


def test_decas_embedding_with_torch_tensors_loads_without_torch(flame_files, head_arrays,
                                                               monkeypatch, tmp_path):
    torch = pytest.importorskip("torch", reason="writing torch tensors needs the torch extra")
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, embedding_dict(head_arrays, lambda a: torch.tensor(np.array(a))),
            allow_pickle=True)
    _no_chumpy_no_torch(monkeypatch)
    emb = flame.load_landmark_embedding(path)
    np.testing.assert_array_equal(emb["dynamic_lmk_faces"], head_arrays["dynamic_lmk_faces"])
    np.testing.assert_array_equal(emb["dynamic_lmk_bary"], head_arrays["dynamic_lmk_bary"])
    np.testing.assert_array_equal(emb["full_lmk_faces"], head_arrays["full_lmk_faces"])


def test_npz_round_trip(tmp_path, model):
    path = tmp_path / "head.npz"
    flame.save_flame_npz(path, model)
    _assert_same_model(flame.load_flame(path), model)
    small = flame.load_flame(path, n_shape=10, n_expression=5)
    assert small.n_shape == 10 and small.n_expression == 5


def test_bases_are_stored_component_major_and_files_keep_their_layout(model, head_arrays):
    """FlameModel holds component k of each basis as a (V, 3) field; arrays() and
    with_file_arrays speak FLAME's (V, 3, K) file layout."""
    np.testing.assert_array_equal(np.asarray(model.shapedirs[7]),
                                  head_arrays["shapedirs"][:, :, 7].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(model.posedirs[20]),
                                  head_arrays["posedirs"][:, :, 20].astype(np.float32))
    arrays = model.arrays()
    assert arrays["exprdirs"].shape == (model.n_vertices, 3, model.n_expression)
    rebuilt = flame.with_file_arrays(model, arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(np.asarray(getattr(rebuilt, key)), np.asarray(
            getattr(model, key)) if key != "parents" else value)


def test_pickle_needs_embedding_and_uvs(flame_files):
    pkl, obj, emb = flame_files
    with pytest.raises(AssetError, match="landmark embedding.*landmark_embedding.npy"):
        flame.load_flame(pkl, uv_template=obj)
    with pytest.raises(AssetError, match="uv template.*head_template.obj"):
        flame.load_flame(pkl, landmark_embedding=emb)


def test_truncated_pickle(flame_files, tmp_path):
    pkl, obj, emb = flame_files
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pkl.read_bytes()[: pkl.stat().st_size // 2])
    with pytest.raises(AssetError, match="cut.pkl.*truncated or corrupt"):
        flame.load_flame(cut, landmark_embedding=emb, uv_template=obj)


def test_truncated_npz_and_embedding(tmp_path, model, flame_files):
    path = tmp_path / "head.npz"
    flame.save_flame_npz(path, model)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(AssetError, match="truncated or corrupt"):
        flame.load_flame(path)
    emb = flame_files[2]
    cut = tmp_path / "emb.npy"
    cut.write_bytes(emb.read_bytes()[:300])
    with pytest.raises(AssetError, match="truncated or corrupt"):
        flame.load_landmark_embedding(cut)


def test_missing_key(flame_files, head_arrays, monkeypatch):
    pkl, obj, emb = flame_files
    write_flame_pickle(pkl, head_arrays, monkeypatch, drop=["weights"])
    with pytest.raises(AssetError, match=r"missing key\(s\) \['weights'\]"):
        flame.load_flame(pkl, landmark_embedding=emb, uv_template=obj)


def test_wrong_shape(flame_files, head_arrays, monkeypatch):
    pkl, obj, emb = flame_files
    bad = {"posedirs": Ch(head_arrays["posedirs"][:, :, :27])}
    write_flame_pickle(pkl, head_arrays, monkeypatch, change=bad)
    with pytest.raises(AssetError, match=r"'posedirs' has shape \(5023, 3, 27\), "
                                         r"expected \(5023, 3, 36\)"):
        flame.load_flame(pkl, landmark_embedding=emb, uv_template=obj)
    bad = {"shapedirs": Ch(head_arrays["shapedirs"])}  # 300 instead of 400 components
    write_flame_pickle(pkl, head_arrays, monkeypatch, change=bad)
    with pytest.raises(AssetError, match=r"'shapedirs' has shape \(5023, 3, 300\)"):
        flame.load_flame(pkl, landmark_embedding=emb, uv_template=obj)


def test_a_needed_key_that_is_a_chumpy_expression(flame_files, head_arrays, monkeypatch):
    pkl, obj, emb = flame_files
    write_flame_pickle(pkl, head_arrays, monkeypatch,
                       change={"posedirs": MatVecMult(Ch(head_arrays["posedirs"]))})
    with pytest.raises(AssetError, match=r"\['posedirs'\] are chumpy expressions"):
        flame.load_flame(pkl, landmark_embedding=emb, uv_template=obj)


def test_wrong_npz_keys_and_shapes(tmp_path, model):
    arrays = model.arrays()
    del arrays["lbs_weights"]
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(AssetError, match="missing key.*lbs_weights"):
        flame.load_flame(tmp_path / "a.npz")
    arrays = model.arrays()
    arrays["faces"] = arrays["faces"][:, :2]
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(AssetError, match=r"'faces' has shape \(9976, 2\), expected \(9976, 3\)"):
        flame.load_flame(tmp_path / "b.npz")
    arrays = model.arrays()
    arrays["faces"][0, 0] = 10**6
    np.savez(tmp_path / "c.npz", **arrays)
    with pytest.raises(AssetError, match="'faces' has indices outside"):
        flame.load_flame(tmp_path / "c.npz")


def test_wrong_embedding(tmp_path, head_arrays):
    d = embedding_dict(head_arrays)
    d["dynamic_lmk_faces_idx"] = d["dynamic_lmk_faces_idx"][:40]
    np.save(tmp_path / "e.npy", d, allow_pickle=True)
    with pytest.raises(AssetError, match=r"'dynamic_lmk_faces_idx' has shape \(40, 17\), "
                                         r"expected \(79, 17\)"):
        flame.load_landmark_embedding(tmp_path / "e.npy")


def test_missing_file_names_where_to_get_it(tmp_path):
    with pytest.raises(AssetError, match="flame file not found.*flame.is.tue.mpg.de"):
        flame.load_flame(tmp_path / "generic_model.pkl")


def test_face_model_config_defaults_to_the_synthetic_head(model, load_config):
    loaded, albedo = flame.load_face_model(load_config("face_model"))
    np.testing.assert_array_equal(np.asarray(loaded.v_template), np.asarray(model.v_template))
    assert albedo.basis.shape == (256, 256, 3, 20)  # n_albedo=50 capped at what exists


def test_face_model_config_with_real_files(flame_files, tmp_path, model, rng, load_config):
    pkl, obj, emb = flame_files
    cfg = load_config("face_model")
    cfg.update(dict(flame_path=str(pkl), landmark_embedding_path=str(emb),
                    uv_template_path=str(obj), n_shape=20, n_albedo=3))
    with pytest.raises(AssetError, match="no albedo model; set face_model.albedo_path"):
        flame.load_face_model(cfg)
    np.savez(tmp_path / "bfm.npz", MU=rng.uniform(size=4 * 4 * 3), PC=rng.normal(size=(48, 5)))
    cfg.albedo_path = str(tmp_path / "bfm.npz")
    loaded, albedo = flame.load_face_model(cfg)
    assert loaded.n_shape == 20 and albedo.basis.shape == (4, 4, 3, 3)
