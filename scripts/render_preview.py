"""Renders the synthetic head with jaxface's face renderer into one PNG.

    python scripts/render_preview.py --out docs/img/renderer.png

Columns: three yaws. Rows: ``render`` (UV albedo x per-pixel SH light, antialiased), the
``render_shape`` gray look of the coarse mesh, and of the detail surface: a displacement map
of horizontal wrinkles applied in UV space (``world2uv`` + ``displacement_normals``).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxface import flame
from jaxface.geometry import vertex_normals
from jaxface.render import displacement_normals, face_topology, render, render_shape, world2uv


def _wrinkles(uv_size: int) -> np.ndarray:
    """A displacement map (1, S, S, 1): forehead-height horizontal ripples, 1 mm deep."""
    v = 1.0 - (np.arange(uv_size) + 0.5) / uv_size
    ripples = 0.001 * np.sin(2 * np.pi * 24 * v)[:, None] * np.ones((1, uv_size))
    return ripples[None, ..., None].astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    model = flame.synthetic_flame()
    arrays = flame.synthetic_head_arrays(0)
    albedo_model = flame.AlbedoModel(jnp.asarray(arrays["albedo_mean"]),
                                     jnp.asarray(arrays["albedo_basis"]))
    uv_size = 256
    topo = face_topology(model.faces, model.uvs, model.uv_faces, uv_size=uv_size)
    yaws = np.radians([0.0, 35.0, 70.0])
    b = len(yaws)
    pose = jnp.zeros((b, 15)).at[:, 1].set(jnp.asarray(yaws, jnp.float32))
    out = flame.forward(model, jnp.zeros((b, model.n_shape)),
                        jnp.zeros((b, model.n_expression)), pose)
    cam = jnp.tile(jnp.asarray([[7.0, 0.0, 0.1]]), (b, 1))
    sh = jnp.zeros((b, 9, 3)).at[:, 0].set(3.0).at[:, 1].set(0.6).at[:, 2].set(0.4)
    albedo = jnp.broadcast_to(flame.albedo_map(albedo_model, jnp.zeros((1, 1)))[:1],
                              (b, uv_size, uv_size, 3))
    size = (args.size, args.size)

    @jax.jit
    def pictures(vertices):
        shaded = render(vertices, cam, albedo, sh, topo, size).image
        coarse = render_shape(vertices, cam, topo, size)
        uv_pos = world2uv(vertices, topo.uv_rast, topo.faces)
        uv_nrm = world2uv(vertex_normals(vertices, topo.faces), topo.uv_rast, topo.faces)
        disp = jnp.broadcast_to(jnp.asarray(_wrinkles(uv_size)), (b, uv_size, uv_size, 1))
        mask = (topo.uv_rast[0, ..., 3:] > 0).astype(jnp.float32)
        detail = displacement_normals(uv_pos, uv_nrm, disp, mask, topo.uv_flipped)
        fine = render_shape(vertices, cam, topo, size, detail_normals_uv=detail)
        return shaded, coarse, fine

    rows = [np.concatenate(list(np.asarray(r)), 1) for r in pictures(out.vertices)]
    grid = np.clip(np.concatenate(rows, 0), 0.0, 1.0)
    Image.fromarray((grid * 255 + 0.5).astype(np.uint8)).save(args.out)
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")


if __name__ == "__main__":
    main()
