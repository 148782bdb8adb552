"""Renders a FLAME-format head from three views (and posed variants) into one PNG.

    python scripts/render_head_views.py --out docs/img/synthetic_head.png
    python scripts/render_head_views.py --flame head.npz --out head.png

A painter's-algorithm preview in NumPy + Pillow for documentation pictures (it needs no
rasterizer): triangles sorted back to front, albedo from the UV texture, Lambertian light.
Top row: the rest head from the front, at 40 degrees and in profile, with its 68 landmarks.
Bottom row: the jaw opened, a smile (expression), and an identity two standard deviations
along the first shape components.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw

from jaxface import flame


def _rot_y(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def render_view(verts, faces, face_colors, landmarks, yaw, size=320):
    """One view, the head turned by ``yaw`` degrees about y after posing."""
    rot = _rot_y(yaw)
    v = verts @ rot.T
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    light = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
    shade = 0.25 + 0.75 * np.clip(n @ light, 0, 1)
    visible = n[:, 2] > 0
    order = np.argsort(tri[:, :, 2].mean(1))
    centre = np.array([0.0, -0.02])
    scale = size / 0.30

    def px(p):
        return np.stack([(p[..., 0] - centre[0]) * scale + size / 2,
                         size / 2 - (p[..., 1] - centre[1]) * scale], -1)

    img = Image.new("RGB", (size, size), (40, 44, 52))
    draw = ImageDraw.Draw(img)
    pts = px(tri)
    for f in order:
        if visible[f]:
            c = tuple(int(255 * min(1.0, x)) for x in face_colors[f] * shade[f])
            draw.polygon([tuple(p) for p in pts[f]], fill=c)
    if landmarks is not None:
        for p in px(landmarks @ rot.T):
            draw.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=(60, 230, 90))
    return img


def face_colors(model, albedo_mean):
    uv = np.asarray(model.uvs)[np.asarray(model.uv_faces)].mean(1)
    h, w, _ = albedo_mean.shape
    col = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    row = np.clip(((1 - uv[:, 1]) * h).astype(int), 0, h - 1)
    return np.asarray(albedo_mean)[row, col]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flame", default=None, help="jaxface .npz (default: synthetic head)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.flame:
        model = flame.load_flame(args.flame)
        albedo = flame.load_albedo(args.flame)
    else:
        model = flame.synthetic_flame()
        arrays = flame.synthetic_head_arrays()
        albedo = flame.AlbedoModel(arrays["albedo_mean"], arrays["albedo_basis"])
    colors = face_colors(model, np.asarray(albedo.mean))
    faces = np.asarray(model.faces)
    shape = np.zeros((6, model.n_shape))
    expr = np.zeros((6, model.n_expression))
    pose = np.zeros((6, 15))
    pose[:, 1] = np.radians([0, 40, 90, 25, 25, 25])  # global yaw: the contour follows it
    pose[3, 6] = 0.35            # jaw open (rotation about x)
    expr[4, 1] = 3.0             # expression component 1 (smile on the synthetic head)
    shape[5, :4] = [2.0, -2.0, 2.0, 2.0]
    out = flame.forward(model, jnp.asarray(shape), jnp.asarray(expr), jnp.asarray(pose))
    verts, lms = np.asarray(out.vertices), np.asarray(out.landmarks3d)
    tiles = [render_view(verts[i], faces, colors, lms[i] if i < 3 else None, 0)
             for i in range(6)]
    size = tiles[0].size[0]
    sheet = Image.new("RGB", (3 * size, 2 * size))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % 3) * size, (k // 3) * size))
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
