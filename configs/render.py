"""The renderer's settings, embedded in experiment configs as ``config.render``.

The render size is the network's input size (``model.image_size``) and UV maps are
``model.uv_size``. Override on the command line, e.g. ``--config.render.backend=jax``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # "auto": nvdiffrast's CUDA kernels when built and a GPU is present, else the pure-JAX
    # rasterizer; "jax" or "nvdiffrast" to force one (nvdiffrast fails clearly when absent).
    c.backend = "auto"
    # The losses' render is DECA's: the face-and-eye UV region over the input image, its
    # coverage a constant (no silhouette gradient). True: nvdiffrast's analytic antialiasing
    # of the region's silhouette edges, which then pull on the geometry.
    c.antialias = False
    return c
