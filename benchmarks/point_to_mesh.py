"""NoW's distance search: exact scan-to-mesh distances, and one image's whole evaluation.

    python benchmarks/point_to_mesh.py [--points 20000 60000] [--repeats 3]

A NoW-shaped problem on the FLAME-format head (5023 vertices, 9976 triangles): "scan" points
on the head's surface in mm with 1 mm of normal noise (NoW's cropped scans hold tens of
thousands of points). Rows: the jit-compiled brute force over every triangle (the reference,
timed on 2048 points and scaled), the grid search of ``closest_points_on_mesh`` (the same
exact result), and ``fit_to_scan`` (landmark Procrustes + closest-point refinement + the
final distances: one NoW image), with the time 2054 images (NoW's size) would take.
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from timing import median_seconds

from jaxface import flame
from jaxface.data.now_layout import NOW_FROM_68
from jaxface.eval.now import crop_scan, fit_to_scan
from jaxface.eval.point_to_mesh import _all_triangles_closest, closest_points_on_mesh


def scan_points(verts, faces, n, rng):
    tri = verts[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(faces), n, p=area / area.sum())
    w = rng.dirichlet([1, 1, 1], n)
    points = np.einsum("nk,nkd->nd", w, tri[pick])
    normal = np.cross(tri[pick, 1] - tri[pick, 0], tri[pick, 2] - tri[pick, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return points + rng.normal(0, 1.0, (n, 1)) * normal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[20000, 60000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = flame.synthetic_flame()
    out = flame.forward(model, jnp.zeros((1, model.n_shape)), jnp.zeros((1, model.n_expression)),
                        jnp.zeros((1, 15)))
    verts_m = np.asarray(out.vertices[0], np.float64)
    lm_m = np.asarray(out.landmarks3d[0], np.float64)[NOW_FROM_68]
    verts, faces = 1000 * verts_m, np.asarray(model.faces)
    rng = np.random.default_rng(0)
    print(f"# {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"jax {jax.__version__}; mesh {len(verts)} vertices, {len(faces)} triangles")
    probe = scan_points(verts, faces, 2048, rng).astype(np.float32)
    v32, f32 = jnp.asarray(verts, jnp.float32), jnp.asarray(faces)
    brute_per_point = median_seconds(
        lambda: _all_triangles_closest(jnp.asarray(probe), v32, f32), args.repeats) / 2048
    print("| what | points | seconds | points/s | vs brute force |")
    print("|---|---|---|---|---|")
    for n in args.points:
        points = scan_points(verts, faces, n, rng).astype(np.float32)
        brute = brute_per_point * n
        print(f"| brute force (scaled from 2048) | {n} | {brute:.2f} | {n / brute:,.0f} | "
              "1.0x |")
        grid = median_seconds(lambda p=points: closest_points_on_mesh(p, verts.astype(
            np.float32), faces, return_distances=True)[1], args.repeats)
        print(f"| grid search | {n} | {grid:.3f} | {n / grid:,.0f} | {brute / grid:.0f}x |")
        scan_lm = 1000 * lm_m
        cropped = crop_scan(points.astype(np.float64), scan_lm)
        fit_to_scan(verts_m * 1.02, faces, lm_m * 1.02, cropped, scan_lm)   # compiles
        start = time.perf_counter()
        for _ in range(args.repeats):
            fit = fit_to_scan(verts_m * 1.02, faces, lm_m * 1.02, cropped, scan_lm)
        image = (time.perf_counter() - start) / args.repeats
        print(f"| one NoW image (fit + distances, {len(cropped)} cropped points, median "
              f"{np.median(fit.distances):.2f} mm) | {len(cropped)} | {image:.2f} | "
              f"{len(cropped) / image:,.0f} | 2054 images: {2054 * image / 60:.0f} min |")


if __name__ == "__main__":
    main()
