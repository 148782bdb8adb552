"""Backend selection: names, the "not built" and "no CUDA device" errors, float64 staying on
the pure-JAX backend under "auto", and the render functions dispatching to the chosen one."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.render import BackendUnavailableError, rasterize, render, resolve_backend
from jaxface.render.backend import use_nvdiffrast
from jaxface.render.nvdr_ffi import ops
from tests.render.nvdr_stand_ins import stand_in_kernel


@pytest.fixture
def no_library(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXFACE_NVDR_LIBRARY", str(tmp_path / "missing" / "lib.so"))


def test_without_the_library_auto_is_jax_and_nvdiffrast_says_build_it(no_library):
    assert resolve_backend("auto") == "jax" and resolve_backend("jax") == "jax"
    with pytest.raises(BackendUnavailableError, match="not built: run `jaxface build-nvdiffrast`"):
        resolve_backend("nvdiffrast")
    with pytest.raises(BackendUnavailableError, match="not built"):
        rasterize(jnp.zeros((1, 3, 4)), jnp.asarray([[0, 1, 2]]), (4, 4), backend="nvdiffrast")


def test_a_built_library_without_cuda_says_no_device(tmp_path, monkeypatch):
    library = tmp_path / "libjaxface_nvdr.so"
    library.write_bytes(b"")
    monkeypatch.setenv("JAXFACE_NVDR_LIBRARY", str(library))
    assert resolve_backend("auto") == "jax"  # this machine has no CUDA device
    with pytest.raises(BackendUnavailableError, match="no CUDA device is visible"):
        resolve_backend("nvdiffrast")


def test_unknown_backend_names_are_refused():
    with pytest.raises(ValueError, match="must be one of"):
        rasterize(jnp.zeros((1, 3, 4)), jnp.zeros((1, 3), jnp.int32), (4, 4), backend="gl")


def test_auto_keeps_float64_on_jax_and_nvdiffrast_refuses_it(monkeypatch):
    monkeypatch.setattr("jaxface.render.backend.nvdiffrast_unavailable_reason", lambda: None)
    assert use_nvdiffrast("auto", jnp.float32) and use_nvdiffrast("nvdiffrast", jnp.float32)
    assert not use_nvdiffrast("auto", np.float64) and not use_nvdiffrast("jax", jnp.float32)
    with pytest.raises(TypeError, match="computes in float32"):
        use_nvdiffrast("nvdiffrast", np.float64)


def test_render_runs_every_primitive_on_the_chosen_backend(model, rng, monkeypatch):
    """With the backend available (kernels stood in for by pure JAX, counted), render() sends
    rasterize, interpolate, texture and antialias to it and gives the pure-JAX picture."""
    from jaxface import flame
    from jaxface.render import face_topology

    calls = []

    def counting(target, results, attrs, aliases):
        calls.append(target)
        return stand_in_kernel(target, results, attrs, aliases)

    topology = face_topology(model.faces, model.uvs, model.uv_faces, 32, backend="jax")
    verts = flame.forward(model, jnp.zeros((2, model.n_shape)),
                          jnp.zeros((2, model.n_expression)), jnp.zeros((2, 15))).vertices
    cam = jnp.asarray([[8.0, 0.0, 0.0], [7.0, 0.01, -0.02]], jnp.float32)
    albedo = jnp.asarray(rng.uniform(size=(2, 32, 32, 3)), jnp.float32)
    light = jnp.asarray(rng.normal(scale=0.3, size=(2, 9, 3)), jnp.float32).at[:, 0].set(1.0)
    want = render(verts, cam, albedo, light, topology, (24, 24), backend="jax")
    monkeypatch.setattr(ops, "kernel_call", counting)
    monkeypatch.setattr("jaxface.render.backend.nvdiffrast_unavailable_reason", lambda: None)
    got = render(verts, cam, albedo, light, topology, (24, 24), backend="auto")
    assert {"jaxface_nvdr_rasterize_fwd", "jaxface_nvdr_interpolate_fwd",
            "jaxface_nvdr_texture_fwd", "jaxface_nvdr_antialias_fwd"} <= set(calls)
    assert float(jnp.max(want.alpha)) > 0.5
    np.testing.assert_allclose(np.asarray(got.image), np.asarray(want.image), atol=1e-6)
