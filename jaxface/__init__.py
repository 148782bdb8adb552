"""jaxface: detailed 3D face reconstruction from a single photo in JAX/Flax.

One concept per subpackage, importing one way (lower rooms never import higher ones):

- ``jaxface.geometry``: camera projection, framing, normals, alignment (pure functions).
- ``jaxface.flame``: the FLAME head model in pure ``jnp`` (loading, LBS, landmarks, albedo)
  and the embedded synthetic head that stands in for the licensed FLAME files.
- ``jaxface.render``: the differentiable rasterizer (pure JAX, or nvdiffrast's CUDA kernels
  through ``jax.ffi``), spherical-harmonics shading, UV maps.
- ``jaxface.models``: the regressor (ResNet50, RGA, FPN, priors, E_c / E_d / F_d) in Flax
  NNX, its parameter code, and DECA's / EMOCA's checkpoint layouts.
- ``jaxface.reconstruction``: what every user of the regressor shares: the face assets, the
  one forward pass (``predict``), loading a model folder, mesh and image files.
- ``jaxface.losses``: every loss term as a pure function, and the networks they need.
- ``jaxface.data``: synthetic data, photo preparation, landmarks, the training pipeline, the
  NoW folder layout.
- ``jaxface.train`` / ``jaxface.infer`` / ``jaxface.eval``: the jit-compiled steps,
  checkpoints and loop / reconstruct, fit and NoW predictions / the NoW evaluation.
- ``jaxface.export``: model folders (``jax.export``) from training runs or DECA/EMOCA weights.
- ``jaxface.cli``: the ``jaxface`` command line.

``python scripts/import_graph.py`` prints the graph and checks that no import points up.
"""

__version__ = "0.1.0"
