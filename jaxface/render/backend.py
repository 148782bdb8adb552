"""Choosing the rasterizer backend: ``"auto"``, ``"jax"`` (everywhere) or ``"nvdiffrast"``.

``"auto"`` picks nvdiffrast when a CUDA device and the built nvdiffrast library are present,
else the pure-JAX backend. The nvdiffrast backend is built by its own issue; until then asking
for it explicitly fails with an error that says so.
"""

from __future__ import annotations

BACKENDS = ("auto", "jax", "nvdiffrast")


class BackendUnavailableError(RuntimeError):
    """The requested rasterizer backend cannot run here (not built, or no CUDA device)."""


def nvdiffrast_available() -> bool:
    """True when the nvdiffrast FFI library is built and a CUDA device is visible."""
    return False  # the XLA FFI library does not exist yet (nvdiffrast backend issue)


def resolve_backend(name: str) -> str:
    """The backend that will run for a requested name (validates the name)."""
    if name not in BACKENDS:
        raise ValueError(f"render backend must be one of {BACKENDS}, got {name!r}")
    if name == "auto":
        return "nvdiffrast" if nvdiffrast_available() else "jax"
    if name == "nvdiffrast" and not nvdiffrast_available():
        raise BackendUnavailableError(
            "the nvdiffrast backend is not available: its XLA FFI library is not built in this "
            "installation (and it needs a CUDA GPU); use backend='jax' or 'auto'")
    return name
