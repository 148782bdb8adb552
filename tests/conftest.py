"""Shared fixtures: the synthetic head (built once), fresh random generators, float64 mode."""

from __future__ import annotations

import os
import secrets

import jax
import numpy as np
import pytest

from jaxface import flame


def pytest_configure(config):
    """One persistent XLA compilation cache per test session: tests that build the same
    program again (a resumed training run, a re-created step function) reuse the compiled
    executable instead of compiling it again."""
    import tempfile

    cache = tempfile.mkdtemp(prefix="jaxface-xla-cache-")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(scope="session")
def model() -> flame.FlameModel:
    return flame.synthetic_flame()


@pytest.fixture(scope="session")
def head_arrays() -> dict[str, np.ndarray]:
    return flame.synthetic_head_arrays(0)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator with a fresh seed each run (set JAXFACE_TEST_SEED to replay one); the seed
    is printed, so a failure's captured output names it."""
    seed = int(os.environ.get("JAXFACE_TEST_SEED", secrets.randbits(32)))
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
