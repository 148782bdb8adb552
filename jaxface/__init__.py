"""jaxface: detailed 3D face reconstruction from a single photo in JAX/Flax.

The package is laid out one concept per subpackage:

- ``jaxface.flame``: the FLAME head model in pure ``jnp`` (loading, LBS, landmarks) and the
  embedded synthetic head that stands in for the licensed FLAME files.
- ``jaxface.geometry``: camera projection and surface normals.
- ``jaxface.render``: lighting (spherical harmonics) and, later, the rasterizer.
"""

__version__ = "0.1.0"
