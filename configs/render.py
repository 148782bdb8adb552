"""The renderer's settings, embedded in experiment configs as ``config.render``.

Override on the command line, e.g. ``--config.render.backend=jax``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # "auto": nvdiffrast's CUDA kernels when built and a GPU is present, else the pure-JAX
    # rasterizer; "jax" or "nvdiffrast" to force one (nvdiffrast fails clearly when absent).
    c.backend = "auto"
    c.image_size = 224     # square render size in pixels (the network's input size)
    c.uv_size = 256        # UV maps (albedo lookup, world2uv position/normal maps, detail)
    c.antialias = True     # analytic silhouette antialiasing: soft edges, silhouette gradients
    return c
