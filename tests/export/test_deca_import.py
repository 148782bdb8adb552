"""DECA's and EMOCA's checkpoints in jaxface: random weights saved in their layouts are imported
and jaxface's forward is compared with an independent PyTorch restatement of DECA's (written
here from its published architecture: ResNet50 encoders with 2048 -> 1024 -> K heads, the
detail generator), FLAME decoded by the float64 NumPy reference, DECA's camera (s (X + t),
y flipped) and SH shading."""

from __future__ import annotations

import os
import pathlib
import secrets
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.assets import AssetError
from jaxface.configs import load_config
from jaxface.export.deca_import import import_checkpoint, use_deca_data_folder
from jaxface.geometry import vertex_normals
from jaxface.reconstruction.model_folder import load_model
from jaxface.reconstruction.predict import predict, predict_params
from jaxface.render.sh import sh_shading
from tests.flame import flame_reference

torch = pytest.importorskip("torch", reason="the reference DECA is written in PyTorch")
tnn = torch.nn
from tests.models.test_decoder import _torch_generator  # noqa: E402
from tests.models.test_resnet import _TorchResNet50, randomised_batch_norms  # noqa: E402

CONFIGS = pathlib.Path(__file__).parents[2] / "configs"
SIZE = 224


class _DecaResnetEncoder(tnn.Module):
    """DECA's ResnetEncoder: ResNet50 (``encoder``, no classifier), C5 average-pooled, then
    ``layers`` = Linear(2048, 1024), ReLU, Linear(1024, K)."""

    def __init__(self, outsize):
        super().__init__()
        self.encoder = _TorchResNet50()
        del self.encoder.fc
        self.layers = tnn.Sequential(tnn.Linear(2048, 1024), tnn.ReLU(), tnn.Linear(1024, outsize))

    def forward(self, x):
        return self.layers(self.encoder(x)[-1].mean((2, 3)))


class _DecaGenerator(tnn.Module):
    """DECA's detail generator: ``l1`` (Linear to 128 x 8 x 8) and ``conv_blocks``."""

    def __init__(self, latent):
        super().__init__()
        linear, self.conv_blocks = _torch_generator(latent, 8, 0.8)
        self.l1 = tnn.Sequential(linear)

    def forward(self, z):
        return self.conv_blocks(self.l1(z).view(-1, 128, 8, 8)) * 0.01


def _sizes():
    cfg = load_config([f"--config={CONFIGS / 'deca.py'}"])
    from jaxface.reconstruction.assets import load_assets
    return cfg, load_assets(cfg)


@pytest.fixture(scope="module")
def deca_torch():
    """DECA's three modules with random weights, for the synthetic head's sizes."""
    seed = int(os.environ.get("JAXFACE_TEST_SEED", secrets.randbits(32)))
    print(f"deca_torch: JAXFACE_TEST_SEED={seed}")
    torch.manual_seed(seed)     # torch's initialisation draws the weights
    cfg, assets = _sizes()
    s = assets.sizes
    n_code = s["shape"] + s["tex"] + s["exp"] + 6 + 3 + 27
    modules = {"E_flame": randomised_batch_norms(_DecaResnetEncoder(n_code)),
               "E_detail": randomised_batch_norms(_DecaResnetEncoder(128)),
               "D_detail": randomised_batch_norms(_DecaGenerator(128 + s["exp"] + 3)),
               "E_expression": randomised_batch_norms(_DecaResnetEncoder(s["exp"] + 3))}
    with torch.no_grad():   # the code's camera scale around DECA's (the head fills the crop)
        modules["E_flame"].layers[2].bias[n_code - 30] += 8.0
    return cfg, assets, modules


def _deca_reference(modules, image_Bx3xHxW, head_arrays, sizes, expression_encoder=False):
    """DECA's decode in float64 from the torch modules' outputs."""
    with torch.no_grad():
        x = torch.from_numpy(image_Bx3xHxW)
        code = modules["E_flame"](x).double().numpy()
        detail = modules["E_detail"](x)
        exp_code = modules["E_expression"](x).double().numpy() if expression_encoder else None
    names = ("shape", "tex", "exp", "pose", "cam", "light")
    lengths = (sizes["shape"], sizes["tex"], sizes["exp"], 6, 3, 27)
    p = dict(zip(names, np.split(code, np.cumsum(lengths)[:-1], axis=1), strict=True))
    if expression_encoder:   # EMOCA's exp_deca_jaw_pose: expression and jaw replaced
        p["exp"] = exp_code[:, :sizes["exp"]]
        p["pose"] = np.concatenate([p["pose"][:, :3], exp_code[:, sizes["exp"]:]], 1)
    b = code.shape[0]
    pose15 = np.concatenate([p["pose"][:, :3], np.zeros((b, 3)), p["pose"][:, 3:],
                             np.zeros((b, 6))], 1)
    verts, _ = flame_reference.forward(head_arrays, p["shape"], p["exp"], pose15)
    lmk = flame_reference.landmarks(head_arrays, verts, pose15)
    s, t = p["cam"][:, None, :1], p["cam"][:, None, 1:]
    ndc = s * (lmk[..., :2] + t)                       # DECA's batch_orth_proj
    ndc[..., 1] = -ndc[..., 1]                         # DECA flips y (image rows down)
    landmarks2d = (ndc + 1) * SIZE / 2
    with torch.no_grad():
        z = torch.cat([torch.from_numpy(p["pose"][:, 3:]).float(),
                       torch.from_numpy(p["exp"]).float(), detail], 1)
        uv_z = modules["D_detail"](z).numpy().transpose(0, 2, 3, 1)
    light = p["light"].reshape(b, 9, 3)
    # DECA's SH shading of the (world) vertex normals: summed face normals, normalised.
    faces = head_arrays["faces"]
    tri = verts[:, faces]
    fn = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, (slice(None), faces[:, k]), fn)
    n = vn / np.linalg.norm(vn, axis=-1, keepdims=True)
    c = [1 / np.sqrt(4 * np.pi), 2 * np.pi / 3 * np.sqrt(3 / (4 * np.pi)),
         np.pi / 4 * 3 * np.sqrt(5 / (12 * np.pi)), np.pi / 4 * 1.5 * np.sqrt(5 / (12 * np.pi)),
         np.pi / 4 * 0.5 * np.sqrt(5 / (4 * np.pi))]
    nx, ny, nz = n[..., 0], n[..., 1], n[..., 2]
    basis = np.stack([c[0] * np.ones_like(nx), c[1] * nx, c[1] * ny, c[1] * nz,
                      c[2] * nx * ny, c[2] * nx * nz, c[2] * ny * nz, c[3] * (nx**2 - ny**2),
                      c[4] * (3 * nz**2 - 1)], -1)
    shading = np.einsum("bvk,bkc->bvc", basis, light)
    return {"p": p, "vertices": verts, "landmarks2d": landmarks2d, "uv_z": uv_z,
            "light": light, "shading": shading}


def _close(got, want, what, rtol=1e-4):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max(),
                               err_msg=what)


def _save_deca(modules, path):
    torch.save({k: modules[k].state_dict() for k in ("E_flame", "E_detail", "D_detail")}
               | {"global_step": 10, "opt": {"state": {0: {"exp_avg": torch.zeros(3)}}}}, path)


def test_imported_deca_reproduces_decas_forward(deca_torch, head_arrays, tmp_path, rng):
    cfg, assets, modules = deca_torch
    _save_deca(modules, tmp_path / "deca_model.tar")
    report = import_checkpoint(tmp_path / "deca_model.tar", tmp_path / "deca", cfg, "deca",
                               serialize=False)
    assert report["ignored"] == ["opt.state.0.exp_avg"]     # a training run's optimiser
    model = load_model(tmp_path / "deca")
    image = rng.uniform(size=(2, 3, SIZE, SIZE)).astype(np.float32)
    ref = _deca_reference(modules, image, head_arrays, assets.sizes)
    batch = {"image": jnp.asarray(image.transpose(0, 2, 3, 1)),
             "landmarks": jnp.zeros((2, 68, 2)), "mask": jnp.ones((2, SIZE, SIZE, 1))}
    out = jax.jit(lambda b: predict(model.graphdef, model.params, model.batch_stats, b,
                                    model.assets, model.cfg))(batch)
    for group in ("shape", "exp", "pose", "tex"):
        _close(out[group], ref["p"][group], group)
    s, t = ref["p"]["cam"][:, :1], ref["p"]["cam"][:, 1:]
    _close(out["cam"], np.concatenate([s, s * t], 1), "cam (jaxface's s X + t)")
    _close(out["light"], ref["light"], "light")
    _close(out["vertices"], ref["vertices"], "vertices")
    _close(out["landmarks2d"], ref["landmarks2d"], "landmarks2d")
    mask = np.asarray(model.assets.uv_face_eye_mask)
    _close(out["displacement"],
           ref["uv_z"] * mask + np.asarray(model.assets.fixed_displacement), "displacement")
    shading = sh_shading(vertex_normals(out["vertices"], model.assets.topology.faces),
                         out["light"])
    _close(shading, ref["shading"], "SH shading at the vertices")


def _save_emoca(modules, path, monkeypatch):
    """A Lightning-style checkpoint: the modules under ``deca.``, FLAME buffers and a loss
    network beside them, and hyper-parameters of a class the reader does not have."""
    foreign = types.ModuleType("emoca_config_stand_in")

    class DictConfig:     # pickled by reference to a module that will not exist at load
        def __init__(self):
            self.content = {"exp_deca_jaw_pose": True}

    DictConfig.__module__, DictConfig.__qualname__ = foreign.__name__, "DictConfig"
    foreign.DictConfig = DictConfig
    monkeypatch.setitem(sys.modules, foreign.__name__, foreign)
    state = {f"deca.{m}.{k}": v for m, module in modules.items()
             for k, v in module.state_dict().items()}
    state |= {"deca.flame.shapedirs": torch.zeros(5, 3, 2),
              "deca.id_loss.fc.weight": torch.zeros(4, 4)}
    torch.save({"state_dict": state, "hyper_parameters": DictConfig(), "epoch": 3}, path)
    monkeypatch.delitem(sys.modules, foreign.__name__)


def test_imported_emoca_replaces_expression_and_jaw(deca_torch, head_arrays, tmp_path, rng,
                                                    monkeypatch):
    cfg, assets, modules = deca_torch
    _save_emoca(modules, tmp_path / "emoca.ckpt", monkeypatch)
    emoca_cfg = load_config([f"--config={CONFIGS / 'emoca.py'}"])
    report = import_checkpoint(tmp_path / "emoca.ckpt", tmp_path / "emoca", emoca_cfg,
                               "emoca", serialize=False)
    assert report["expression_encoder"] == "exp_jaw"
    assert report["ignored"] == ["deca.flame.shapedirs", "deca.id_loss.fc.weight"]
    model = load_model(tmp_path / "emoca")
    image = rng.uniform(size=(2, 3, SIZE, SIZE)).astype(np.float32)
    ref = _deca_reference(modules, image, head_arrays, assets.sizes, expression_encoder=True)
    batch = {"image": jnp.asarray(image.transpose(0, 2, 3, 1))}
    p, _ = jax.jit(lambda b: predict_params(model.graphdef, model.params, model.batch_stats,
                                            b | {"landmarks": None, "mask": None}, model.cfg,
                                            model.assets.sizes, False))(batch)
    for group in ("shape", "exp", "pose", "tex", "cam"):
        _close(p[group], ref["p"][group], group)


def test_a_mismatched_checkpoint_stops_with_the_keys(deca_torch, tmp_path):
    cfg, _, modules = deca_torch
    state = {k: modules[k].state_dict() for k in ("E_flame", "E_detail", "D_detail")}
    del state["E_detail"]["layers.2.bias"]
    state["D_detail"]["conv_blocks.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.tar")
    with pytest.raises(AssetError, match=r"1 missing \['E_detail.layers.2.bias'\], 1 "
                                         r"unexpected \['D_detail.conv_blocks.99.weight'\]"):
        import_checkpoint(tmp_path / "broken.tar", tmp_path / "out", cfg, "deca")
    state = {k: modules[k].state_dict() for k in ("E_flame", "E_detail", "D_detail")}
    state["E_flame"]["layers.2.weight"] = torch.zeros(236, 1024)
    state["E_flame"]["layers.2.bias"] = torch.zeros(236)
    torch.save(state, tmp_path / "sizes.tar")
    with pytest.raises(AssetError, match="E_flame.layers.2.*n_shape"):
        import_checkpoint(tmp_path / "sizes.tar", tmp_path / "out", cfg, "deca")
    (tmp_path / "junk.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(AssetError, match="not a readable PyTorch checkpoint"):
        import_checkpoint(tmp_path / "junk.tar", tmp_path / "out", cfg, "deca")
    with pytest.raises(AssetError, match="checkpoint not found.*DECA's release"):
        import_checkpoint(tmp_path / "missing.tar", tmp_path / "out", cfg, "deca")
    assert not (tmp_path / "out").exists()


def test_reading_runs_no_code_from_the_file(tmp_path):
    """A pickle whose hyper-parameters would call os.system gets an inert stand-in."""
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"E_flame": {"w": torch.ones(2)}, "x": Exploit()}, tmp_path / "evil.tar")
    from jaxface.models.deca_checkpoint import read_torch_tensors

    tensors = read_torch_tensors(tmp_path / "evil.tar", "nowhere")
    assert list(tensors) == ["E_flame.w"] and not marker.exists()


def test_the_deca_data_folder_is_checked_file_by_file(tmp_path):
    cfg = load_config([f"--config={CONFIGS / 'deca.py'}"])
    (tmp_path / "generic_model.pkl").write_bytes(b"")
    with pytest.raises(AssetError, match="landmark_embedding.npy: missing from --flame-dir"):
        use_deca_data_folder(cfg, tmp_path)


@pytest.mark.slow
def test_import_deca_then_reconstruct_writes_every_output(deca_torch, sample_photos, tmp_path):
    pytest.importorskip("dlib", reason="reconstruct's default landmarks are in the face extra")
    from jaxface.cli import main
    from tests.infer.test_reconstruct import SUFFIXES

    _, _, modules = deca_torch
    _save_deca(modules, tmp_path / "deca_model.tar")
    assert main(["import-deca", str(tmp_path / "deca_model.tar"), "--out",
                 str(tmp_path / "model")]) == 0
    assert sorted(p.name for p in (tmp_path / "model").glob("*.jaxexport")) == [
        "infer_batch_any.jaxexport"]
    assert main(["reconstruct", "--model", str(tmp_path / "model"), str(sample_photos),
                 "--out", str(tmp_path / "out"), "--batch-size", "2"]) == 0
    for name in ("astronaut", "grace_hopper"):
        assert sorted(p.name for p in (tmp_path / "out" / name).iterdir()) == sorted(
            name + s for s in SUFFIXES)
