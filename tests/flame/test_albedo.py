import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import flame
from jaxface.assets import AssetError


def test_bfm_layout_is_flattened_bgr(tmp_path, rng):
    h, k = 8, 5
    mu_bgr = rng.uniform(size=(h, h, 3))
    pc_bgr = rng.normal(size=(h, h, 3, k))
    path = tmp_path / "FLAME_albedo_from_BFM.npz"
    np.savez(path, MU=mu_bgr.reshape(1, -1), PC=pc_bgr.reshape(-1, k))
    model = flame.load_albedo(path)
    np.testing.assert_allclose(np.asarray(model.mean), mu_bgr[..., ::-1], atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.basis), pc_bgr[..., ::-1, :], atol=1e-6)
    assert flame.load_albedo(path, n_components=2).basis.shape == (h, h, 3, 2)


def test_flame_texture_layout_is_scaled_to_unit_range(tmp_path, rng):
    mean = rng.uniform(0, 255, size=(4, 4, 3))
    np.savez(tmp_path / "tex.npz", mean=mean, tex_dir=rng.normal(size=(4, 4, 3, 3)))
    model = flame.load_albedo(tmp_path / "tex.npz")
    np.testing.assert_allclose(np.asarray(model.mean), mean[..., ::-1] / 255, rtol=1e-6)


def test_albedo_map_against_numpy(tmp_path, rng):
    mean, basis = rng.uniform(size=(6, 6, 3)), rng.normal(size=(6, 6, 3, 4))
    model = flame.AlbedoModel(jnp.asarray(mean), jnp.asarray(basis))
    tex = rng.normal(size=(2, 3))
    got = np.asarray(flame.albedo_map(model, jnp.asarray(tex, jnp.float32)))
    want = np.stack([mean + basis[..., :3] @ t for t in tex])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_synthetic_albedo_round_trips_through_npz(tmp_path, head_arrays):
    np.savez(tmp_path / "h.npz", albedo_mean=head_arrays["albedo_mean"],
             albedo_basis=head_arrays["albedo_basis"])
    model = flame.load_albedo(tmp_path / "h.npz")
    np.testing.assert_array_equal(np.asarray(model.mean), head_arrays["albedo_mean"])


def test_albedo_errors(tmp_path, rng):
    with pytest.raises(AssetError, match="albedo file not found.*BFM_to_FLAME"):
        flame.load_albedo(tmp_path / "missing.npz")
    np.savez(tmp_path / "a.npz", foo=np.zeros(3))
    with pytest.raises(AssetError, match=r"no albedo found.*\['foo'\]"):
        flame.load_albedo(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", MU=np.zeros(4 * 4 * 3), PC=np.zeros((4 * 4 * 2, 7)))
    with pytest.raises(AssetError, match="'PC' has shape"):
        flame.load_albedo(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", MU=np.zeros(4 * 4 * 3), PC=np.zeros((4 * 4 * 3, 7)))
    with pytest.raises(AssetError, match="asked for 9 albedo components"):
        flame.load_albedo(tmp_path / "c.npz", n_components=9)
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(AssetError, match="truncated or corrupt"):
        flame.load_albedo(tmp_path / "d.npz")
