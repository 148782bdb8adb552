"""The face model's UV regions and fixed displacement: DECA's files, a model folder's stored
arrays, or masks derived from the mesh."""

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxface.assets import AssetError
from jaxface.configs import load_config
from jaxface.flame.loading import load_fixed_displacement, load_uv_mask
from jaxface.reconstruction.assets import load_assets, uv_regions

CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"


@pytest.fixture(scope="module")
def cfg():
    return load_config([f"--config={CONFIG}", "--config.model.use_grpam=False",
                        "--config.model.image_size=64", "--config.model.uv_size=64"])


def test_derived_regions_of_the_synthetic_head(cfg):
    """Without files: the face-and-eye region (front of the face, eyeballs included) and the
    face region (no eyeballs)."""
    assets = load_assets(cfg)
    face_eye, face = np.asarray(assets.uv_face_eye_mask), np.asarray(assets.uv_face_mask)
    assert face_eye.shape == face.shape == (64, 64, 1)
    assert set(np.unique(face_eye)) <= {0.0, 1.0} and 0.05 < face_eye.mean() < 0.6
    assert np.all(face <= face_eye) and face.sum() < face_eye.sum()   # the eyes are removed
    np.testing.assert_array_equal(np.asarray(assets.fixed_displacement), 0.0)


def test_decas_files_are_read_and_resized_as_deca(cfg, tmp_path, rng):
    """DECA reads channel 0 / 255 and resizes with nearest-neighbour (PyTorch's
    interpolate: source index floor(i * 256 / S))."""
    mask = (rng.uniform(size=(256, 256)) > 0.5).astype(np.uint8) * 255
    rgb = np.stack([mask, 255 - mask, np.zeros_like(mask)], -1)
    Image.fromarray(rgb).save(tmp_path / "uv_face_eye_mask.png")
    Image.fromarray(mask[::-1].copy()).save(tmp_path / "uv_face_mask.png")
    disp = rng.normal(size=(256, 256)).astype(np.float32) * 1e-3
    np.save(tmp_path / "fixed_displacement_256.npy", disp)
    rows = (np.arange(64) * 256) // 64
    want = mask[rows][:, rows] / 255.0
    np.testing.assert_array_equal(load_uv_mask(tmp_path / "uv_face_eye_mask.png",
                                               "uv_face_eye_mask", 64)[..., 0], want)
    np.testing.assert_allclose(load_fixed_displacement(tmp_path / "fixed_displacement_256.npy",
                                                       256)[..., 0], disp)
    with cfg.unlocked():
        files = cfg.copy_and_resolve_references()
    files.face_model.uv_face_eye_mask_path = str(tmp_path / "uv_face_eye_mask.png")
    files.face_model.uv_face_mask_path = str(tmp_path / "uv_face_mask.png")
    files.face_model.fixed_displacement_path = str(tmp_path / "fixed_displacement_256.npy")
    assets = load_assets(files)
    np.testing.assert_array_equal(np.asarray(assets.uv_face_eye_mask)[..., 0], want)
    np.testing.assert_array_equal(np.asarray(assets.uv_face_mask)[..., 0],
                                  mask[::-1][rows][:, rows] / 255.0)
    assert assets.fixed_displacement.shape == (64, 64, 1)


def test_missing_or_bad_files_are_named(cfg, tmp_path):
    with pytest.raises(AssetError, match="uv_face_eye_mask file not found.*DECA's data"):
        load_uv_mask(tmp_path / "uv_face_eye_mask.png", "uv_face_eye_mask", 64)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AssetError, match="broken.png: not a readable image"):
        load_uv_mask(tmp_path / "broken.png", "uv_face_mask", 64)
    np.save(tmp_path / "flat.npy", np.zeros(10))
    with pytest.raises(AssetError, match="square"):
        load_fixed_displacement(tmp_path / "flat.npy", 64)


def test_a_flame_pickle_needs_decas_masks(cfg, tmp_path):
    """A real FLAME pickle has no UV regions: the error names the file and where it is."""
    with cfg.unlocked():
        real = cfg.copy_and_resolve_references()
    real.face_model.flame_path = str(tmp_path / "generic_model.pkl")
    model = load_assets(cfg)
    with pytest.raises(AssetError, match="uv_face_eye_mask_path.*uv_face_eye_mask.png"):
        uv_regions(real.face_model, model.model, model.topology)


def test_a_model_folders_head_keeps_its_regions(cfg, tmp_path):
    """An exported face_model.npz stores the regions it was trained with; loading it gives
    them back (resized to the config's UV size)."""
    from jaxface import flame

    assets = load_assets(cfg)
    stored = {"uv_face_eye_mask": np.ones((32, 32, 1), np.float32),
              "uv_face_mask": np.zeros((32, 32, 1), np.float32),
              "fixed_displacement": np.full((32, 32, 1), 2e-3, np.float32)}
    head = tmp_path / "face_model.npz"
    flame.save_flame_npz(head, assets.model, {"albedo_mean": np.asarray(assets.albedo.mean),
                                              "albedo_basis": np.asarray(assets.albedo.basis),
                                              **stored})
    with cfg.unlocked():
        folder = cfg.copy_and_resolve_references()
    folder.face_model.flame_path = str(head)
    got = load_assets(folder)
    for key, value in stored.items():
        np.testing.assert_array_equal(np.asarray(getattr(got, key)), value.repeat(2, 0)
                                      .repeat(2, 1))
    assert jnp.all(got.uv_face_mask == 0)
