"""Lambertian shading under distant light given by 9 spherical-harmonics coefficients per
colour channel (Ramamoorthi & Hanrahan 2001), with DECA's basis order and constants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Real SH up to band 2 (in DECA's order: 1, x, y, z, xy, xz, yz, x^2 - y^2, 3z^2 - 1), each
# multiplied by the Lambertian kernel's band factor A_l: A_1 = 2 pi / 3, A_2 = pi / 4. As in
# DECA, the band-0 term keeps Y_00 = 1 / sqrt(4 pi) without A_0 = pi (a scale the learned
# coefficients absorb).
SH_CONSTANTS = np.array([
    1.0 / np.sqrt(4 * np.pi),
    (2 * np.pi / 3) * np.sqrt(3 / (4 * np.pi)),
    (2 * np.pi / 3) * np.sqrt(3 / (4 * np.pi)),
    (2 * np.pi / 3) * np.sqrt(3 / (4 * np.pi)),
    (np.pi / 4) * 3 * np.sqrt(5 / (12 * np.pi)),
    (np.pi / 4) * 3 * np.sqrt(5 / (12 * np.pi)),
    (np.pi / 4) * 3 * np.sqrt(5 / (12 * np.pi)),
    (np.pi / 4) * (3 / 2) * np.sqrt(5 / (12 * np.pi)),
    (np.pi / 4) * (1 / 2) * np.sqrt(5 / (4 * np.pi)),
])


def sh_basis(normals: jax.Array) -> jax.Array:
    """The 9 scaled basis functions at unit normals (..., 3) -> (..., 9)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    raw = jnp.stack([jnp.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y,
                     3.0 * z * z - 1.0], axis=-1)
    return raw * jnp.asarray(SH_CONSTANTS, normals.dtype)


def sh_shading(normals_Bx___x3: jax.Array, sh_Bx9x3: jax.Array) -> jax.Array:
    """Shading sum_k l_k H_k(N) per colour channel.

    Args:
      normals_Bx___x3: unit normals (B, ..., 3) in the frame the light is expressed in (any
        spatial shape after the batch axis: vertices, pixels, UV texels).
      sh_Bx9x3: per-image SH coefficients (B, 9, 3).
    Returns:
      (B, ..., 3) shading; multiply by the albedo for the Lambertian colour.
    """
    return jnp.einsum("b...k,bkc->b...c", sh_basis(normals_Bx___x3), sh_Bx9x3)
