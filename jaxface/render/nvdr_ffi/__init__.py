"""The nvdiffrast backend: nvdiffrast's CUDA kernels called from jit-compiled JAX through XLA
FFI (``csrc/nvdr_ffi.cpp``, built by ``jaxface build-nvdiffrast``: :mod:`.build`), wrapped in
custom VJPs and a vmap rule (:mod:`.ops`). Selected with ``render.backend = "nvdiffrast"``, or
by ``"auto"`` where the library is built and a CUDA device is visible
(:mod:`jaxface.render.backend`).
"""
