"""Shared fixtures: the synthetic head (built once), fresh random generators, float64 mode."""

from __future__ import annotations

import os
import secrets

import jax
import numpy as np
import pytest

from jaxface import flame

XLA_CACHE = pytest.StashKey[str]()


def pytest_unconfigure(config):
    """The session's compilation cache goes with the session (they were left behind: a
    day of seed sweeps filled /tmp with tens of GB of them)."""
    import shutil

    if XLA_CACHE in config.stash:
        shutil.rmtree(config.stash[XLA_CACHE], ignore_errors=True)


def pytest_configure(config):
    """One persistent XLA compilation cache per test session: tests that build the same
    program again (a resumed training run, a re-created step function) reuse the compiled
    executable instead of compiling it again."""
    import tempfile

    cache = tempfile.mkdtemp(prefix="jaxface-xla-cache-")
    config.stash[XLA_CACHE] = cache
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # A seed sweep's seeds come from one base drawn here, before pytest-xdist starts its
    # workers (they inherit it): every worker must collect the same parametrized tests.
    if os.environ.get("JAXFACE_SEED_SWEEP") and "JAXFACE_SEED_SWEEP_BASE" not in os.environ:
        os.environ["JAXFACE_SEED_SWEEP_BASE"] = str(secrets.randbits(32))


@pytest.fixture(scope="session")
def model() -> flame.FlameModel:
    return flame.synthetic_flame()


@pytest.fixture(scope="session")
def head_arrays() -> dict[str, np.ndarray]:
    return flame.synthetic_head_arrays(0)


def pytest_generate_tests(metafunc):
    """``JAXFACE_SEED_SWEEP=N``: every test that draws from ``rng`` runs N times in one
    process, each with a fresh seed (compiled functions are reused: a sweep of the seeded
    tests costs N x their run time, not N x the start-up)."""
    sweep = int(os.environ.get("JAXFACE_SEED_SWEEP", "0"))
    if sweep > 0 and "sweep_seed" in metafunc.fixturenames:
        base = int(os.environ["JAXFACE_SEED_SWEEP_BASE"])
        seeds = [int(s) for s in np.random.SeedSequence(base).generate_state(sweep)]
        metafunc.parametrize("sweep_seed", seeds, indirect=True,
                             ids=[f"seed{s}" for s in seeds])


@pytest.fixture
def sweep_seed(request) -> int | None:
    """The seed of a ``JAXFACE_SEED_SWEEP`` run (None otherwise)."""
    return getattr(request, "param", None)


@pytest.fixture
def rng(request, sweep_seed) -> np.random.Generator:
    """A generator with a fresh seed each run (set JAXFACE_TEST_SEED to replay one); the seed
    is printed, so a failure's captured output names it."""
    seed = sweep_seed if sweep_seed is not None else int(
        os.environ.get("JAXFACE_TEST_SEED", secrets.randbits(32)))
    print(f"{request.node.nodeid}: JAXFACE_TEST_SEED={seed}")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def load_config():
    """Loads ``configs/<name>.py``'s ``get_config()`` (configs are files, not a package)."""
    import importlib.util
    import pathlib

    def load(name: str):
        path = pathlib.Path(__file__).parents[1] / "configs" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"config_{name.replace('/', '_')}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.get_config()

    return load


@pytest.fixture
def x64():
    """Runs the test with float64 enabled in JAX."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A training work dir holding a random-init network (step 0): the synthetic config at
    64 px without GRPAM, its config.json and one checkpoint — what export starts from."""
    import pathlib

    from jaxface.configs import load_config
    from jaxface.reconstruction.model_folder import model_from_config
    from jaxface.train.checkpoint import Checkpoints
    from jaxface.train.step import init_state

    run = tmp_path_factory.mktemp("tiny_run")
    config = pathlib.Path(__file__).parents[1] / "configs" / "synthetic.py"
    cfg = load_config([f"--config={config}", "--config.model.use_grpam=False",
                       "--config.model.image_size=64", "--config.model.uv_size=64"])
    (run / "config.json").write_text(cfg.to_json_best_effort(indent=2))
    model = model_from_config(cfg)
    params, stats = model.params, model.batch_stats
    checkpoints = Checkpoints(run, best_metric="landmark_px")
    state = init_state(params, stats, cfg)
    checkpoints.save(0, state)
    checkpoints.save_best(0, state, {"landmark_px": 1.0})   # export reads the best
    checkpoints.wait()
    checkpoints.close()
    return run


@pytest.fixture(scope="session")
def tiny_model(tiny_run, tmp_path_factory):
    """``jaxface export`` of :func:`tiny_run` (fixed batch size 2 and any batch size)."""
    from jaxface.export.serialized import export_run

    out = tmp_path_factory.mktemp("tiny_model") / "model"
    export_run(tiny_run, out, "best", batch_size=2)
    return out


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory):
    """Real photos shipped by packages: scikit-image's astronaut, matplotlib's grace_hopper."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    out = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.astronaut()).save(out / "astronaut.png")
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        Image.open(f).convert("RGB").save(out / "grace_hopper.jpg")
    return out
