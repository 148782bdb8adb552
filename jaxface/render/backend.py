"""Choosing the rasterizer backend: ``"auto"``, ``"jax"`` (everywhere) or ``"nvdiffrast"``.

``"nvdiffrast"`` runs nvdiffrast's CUDA kernels through XLA FFI (:mod:`jaxface.render.nvdr_ffi`):
it needs the library built by ``jaxface build-nvdiffrast`` and a CUDA device, and computes in
float32. ``"auto"`` picks it when both are present (and the inputs are float32), else the
pure-JAX backend. Asking for ``"nvdiffrast"`` where it cannot run raises
:class:`BackendUnavailableError` saying why.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BACKENDS = ("auto", "jax", "nvdiffrast")


class BackendUnavailableError(RuntimeError):
    """The requested rasterizer backend cannot run here (not built, or no CUDA device)."""


def cuda_device_visible() -> bool:
    try:
        return len(jax.devices("cuda")) > 0
    except RuntimeError:  # no CUDA backend in this jaxlib, or no device
        return False


def nvdiffrast_unavailable_reason() -> str | None:
    """Why the nvdiffrast backend cannot run here, or None when it can."""
    from jaxface.render.nvdr_ffi.build import library_path

    path = library_path()
    if not path.exists():
        return (f"its XLA FFI library {path} is not built: run `jaxface build-nvdiffrast` "
                "(needs nvcc and `pip install 'jaxface[nvdiffrast]'`)")
    if not cuda_device_visible():
        return (f"no CUDA device is visible to JAX (devices: "
                f"{sorted({d.platform for d in jax.devices()})}); the library is built at {path}")
    return None


def nvdiffrast_available() -> bool:
    """True when the nvdiffrast FFI library is built and a CUDA device is visible."""
    return nvdiffrast_unavailable_reason() is None


def resolve_backend(name: str) -> str:
    """The backend that will run for a requested name (validates the name)."""
    if name not in BACKENDS:
        raise ValueError(f"render backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        return "nvdiffrast" if nvdiffrast_available() else "jax"
    if name == "nvdiffrast":
        reason = nvdiffrast_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"the nvdiffrast backend cannot run here: {reason}; "
                                          "use backend='jax' or 'auto'")
    return name


def use_nvdiffrast(backend: str, dtype) -> bool:
    """Whether a rendering call with ``dtype`` inputs runs on nvdiffrast's kernels: ``"auto"``
    keeps float64 (and other non-float32) calls on the pure-JAX backend, an explicit
    ``"nvdiffrast"`` refuses them."""
    if resolve_backend(backend) != "nvdiffrast":
        return False
    if jnp.dtype(dtype) == jnp.float32:
        return True
    if backend == "auto":
        return False
    raise TypeError(f"the nvdiffrast backend computes in float32, got {jnp.dtype(dtype)}; use "
                    "backend='jax' for other types")
