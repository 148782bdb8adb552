"""``jaxface transfer``: the target's identity, albedo, light, camera and detail code with the
source's expression and pose; F_d's details decoded from that mix; the sweep's frames."""

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxface import flame
from jaxface.cli import main
from jaxface.infer.transfer import TransferError, load_params, transferred
from jaxface.models import apply, flame_pose
from jaxface.reconstruction.model_folder import load_model
from jaxface.reconstruction.predict import OUTPUTS


def _face(rng, sizes, path):
    p = {"shape": rng.normal(size=sizes["shape"]), "tex": rng.normal(size=sizes["tex"]),
         "exp": rng.normal(size=sizes["exp"]), "pose": rng.normal(0, 0.2, size=6),
         "cam": np.array([rng.uniform(7, 9), *rng.normal(0, 0.05, size=2)]),
         "light": rng.normal(0, 0.3, size=(9, 3)) + np.eye(9, 3) * 3,
         "detail_code": rng.normal(size=128)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    np.savez(path, **p, vertices=np.zeros(3))     # other arrays of the file are ignored
    return p


def test_transferred_takes_expression_and_pose_from_the_source(rng, tmp_path):
    sizes = {"shape": 4, "tex": 3, "exp": 5}
    src, tgt = _face(rng, sizes, tmp_path / "a.npz"), _face(rng, sizes, tmp_path / "b.npz")
    mix = transferred(src, tgt)
    for k in ("shape", "tex", "light", "cam", "detail_code"):
        np.testing.assert_array_equal(mix[k], tgt[k])
    for k in ("exp", "pose"):
        np.testing.assert_allclose(mix[k], src[k])
        np.testing.assert_allclose(transferred(src, tgt, 0.0)[k], tgt[k])
        np.testing.assert_allclose(transferred(src, tgt, 0.5)[k], (src[k] + tgt[k]) / 2,
                                   rtol=1e-6)
    assert load_params(tmp_path / "a.npz").keys() == mix.keys()
    np.savez(tmp_path / "bad.npz", shape=np.zeros(3))
    with pytest.raises(TransferError, match="no \\['tex'"):
        load_params(tmp_path / "bad.npz")


def test_transfer_writes_the_mix_and_its_details(tiny_model, rng, tmp_path, capsys):
    model = load_model(tiny_model)
    sizes = model.assets.sizes
    src = _face(rng, sizes, tmp_path / "source_params.npz")
    tgt = _face(rng, sizes, tmp_path / "target_params.npz")
    out = tmp_path / "out"
    assert main(["transfer", "--model", str(tiny_model), "--source",
                 str(tmp_path / "source_params.npz"), "--target",
                 str(tmp_path / "target_params.npz"), "--out", str(out), "--sweep", "3",
                 "--size", "64"]) == 0
    assert "transferred" in capsys.readouterr().out
    got = np.load(out / "transfer_params.npz")
    np.testing.assert_allclose(got["shape"], tgt["shape"], rtol=1e-6)
    np.testing.assert_allclose(got["exp"], src["exp"], rtol=1e-6)
    np.testing.assert_allclose(got["cam"], tgt["cam"], rtol=1e-5)
    np.testing.assert_allclose(got["light"], tgt["light"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["detail_code"], tgt["detail_code"], rtol=1e-6)
    assert set(got.files) <= set(OUTPUTS)          # no pictures or dense maps in the npz
    load_params(out / "transfer_params.npz")        # a result is itself a transfer input
    # The mesh is FLAME of the target's identity in the source's expression and pose.
    want = flame.forward(model.assets.model, jnp.asarray(tgt["shape"])[None],
                         jnp.asarray(src["exp"])[None], flame_pose(jnp.asarray(src["pose"])[None]))
    np.testing.assert_allclose(got["vertices"], np.asarray(want.vertices[0]), atol=1e-5)
    # The details: F_d of the target's detail code with the source's expression and jaw.
    disp, _ = apply(model.graphdef, model.params, model.batch_stats, "decode_detail",
                    jnp.asarray(tgt["detail_code"])[None], jnp.asarray(src["exp"])[None],
                    jnp.asarray(src["pose"][3:])[None], train=False)
    mask = np.asarray(model.assets.uv_face_eye_mask)
    np.testing.assert_allclose(got["displacement"], np.asarray(disp[0]) * mask
                               + np.asarray(model.assets.fixed_displacement), atol=1e-6)
    for name in ("transfer.png", "transfer_coarse.obj", "transfer_detail.obj",
                 "transfer_albedo.png", "sweep.gif"):
        assert (out / name).stat().st_size > 0, name
    frames = sorted((out / "sweep").glob("frame_*.png"))
    assert len(frames) == 3
    gif = Image.open(out / "sweep.gif")
    assert gif.n_frames == 4                     # there and back: 0 1 2 1
    # The first frame is the target as it is (its own expression and pose).
    picture = np.asarray(Image.open(out / "transfer.png"))
    first = np.asarray(Image.open(frames[0]))
    np.testing.assert_array_equal(picture[-64:, 64:128], first)


def test_transfer_between_photos_reconstructs_them_first(tiny_model, sample_photos, tmp_path):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    source, target = sample_photos / "astronaut.png", sample_photos / "grace_hopper.jpg"
    out = tmp_path / "out"
    assert main(["transfer", "--model", str(tiny_model), "--source", str(source),
                 "--target", str(target), "--out", str(out), "--size", "64"]) == 0
    src = load_params(out / "inputs" / "astronaut" / "astronaut" / "astronaut_params.npz")
    tgt = load_params(out / "inputs" / "grace_hopper" / "grace_hopper" /
                      "grace_hopper_params.npz")
    got = np.load(out / "transfer_params.npz")
    np.testing.assert_allclose(got["shape"], tgt["shape"], rtol=1e-6)
    np.testing.assert_allclose(got["exp"], src["exp"], rtol=1e-6)
    (tmp_path / "blank.png").write_bytes((sample_photos / "astronaut.png").read_bytes()[:200])
    assert main(["transfer", "--model", str(tiny_model), "--source", str(tmp_path / "blank.png"),
                 "--target", str(target), "--out", str(tmp_path / "bad"), "--size", "64"]) == 2
