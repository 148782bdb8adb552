"""The NoW benchmark's evaluation of predictions in the official layout
(:mod:`jaxface.data.now_layout`; written by :mod:`jaxface.infer.now_predict`): the per-image
scan-to-mesh errors and the report (``jaxface evaluate-now``)."""

from __future__ import annotations

import csv
import json
import os
import pathlib

import numpy as np

from jaxface.data.now_layout import NowLayoutError, image_list, now_root
from jaxface.eval.now import crop_scan, cumulative_error_curve, fit_to_scan, read_pp


def read_obj(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and triangles (F, 3) of an OBJ (``f`` entries may be ``v/vt/vn``;
    polygons are fanned into triangles)."""
    vertices, faces = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                vertices.append(line.split()[1:4])
            elif line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
                faces += [[idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1)]
    v = np.asarray(vertices, np.float64).reshape(-1, 3)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    f = np.where(f < 0, f + len(v), f - 1)     # OBJ: 1-based, negative = from the end
    if len(v) == 0 or len(f) == 0 or f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"{path}: not a triangle mesh OBJ ({len(v)} vertices, {len(f)} faces)")
    return v, f


def read_landmarks(path_without_suffix: pathlib.Path) -> np.ndarray:
    """The 7 predicted landmarks from ``<image>.npy`` or ``<image>.txt``."""
    for suffix, load in ((".npy", np.load), (".txt", np.loadtxt)):
        path = path_without_suffix.with_suffix(suffix)
        if path.is_file():
            lm = np.asarray(load(path), np.float64)
            if lm.shape != (7, 3):
                raise ValueError(f"{path}: expected 7 x 3 landmarks, got {lm.shape}")
            return lm
    raise FileNotFoundError(f"{path_without_suffix}.npy: missing prediction landmarks")


def _scan_of(root: pathlib.Path, subject: str) -> tuple[np.ndarray, np.ndarray]:
    scans = sorted((root / "scans" / subject).glob("*.obj"))
    pps = sorted((root / "scans_lmks_onlypp" / subject).glob("*.pp"))
    if not scans or not pps:
        raise NowLayoutError(f"no scan (scans/{subject}/*.obj) or landmarks "
                             f"(scans_lmks_onlypp/{subject}/*.pp) under {root}")
    vertices, _ = read_obj(scans[0])
    landmarks = read_pp(pps[0])
    return crop_scan(vertices, landmarks), landmarks


def evaluate_predictions(now: str | os.PathLike, predictions: str | os.PathLike,
                         split: str = "val", metrical: bool = False,
                         progress: bool = True) -> dict:
    """Every image of the split -> {"images": [{image, median_mm, mean_mm, std_mm, points}],
    "errors": {image: per-point errors}, "missing": {image: reason}}."""
    from tqdm import tqdm

    root, pred = now_root(now), pathlib.Path(predictions)
    scans: dict[str, tuple] = {}
    rows, errors, missing = [], {}, {}
    for image in tqdm(image_list(root, split), desc=f"NoW {split}", unit="img",
                      disable=not progress):
        subject = image.split("/")[0]
        stem = pred / pathlib.Path(image).with_suffix("")
        try:
            vertices, faces = read_obj(stem.with_suffix(".obj"))
            landmarks = read_landmarks(stem)
        except (OSError, ValueError) as e:
            missing[image] = str(e)
            continue
        if subject not in scans:
            scans[subject] = _scan_of(root, subject)
        scan, scan_lm = scans[subject]
        err = fit_to_scan(vertices, faces, landmarks, scan, scan_lm, metrical).distances
        errors[image] = err
        rows.append({"image": image, "median_mm": float(np.median(err)),
                     "mean_mm": float(np.mean(err)), "std_mm": float(np.std(err)),
                     "points": int(err.size)})
    return {"images": rows, "errors": errors, "missing": missing}


def write_report(result: dict, out: str | os.PathLike, title: str = "NoW") -> dict:
    """``summary.json``, ``per_image.csv`` and ``cumulative_error.png`` into ``out``;
    returns the summary (median / mean / std over all images' points, NoW's numbers)."""
    from jaxface.eval.now import summarize

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not result["errors"]:
        raise ValueError("no image could be evaluated: "
                         + "; ".join(f"{k}: {v}" for k, v in list(result["missing"].items())[:3]))
    errors = list(result["errors"].values())
    summary = summarize(errors) | {"missing": len(result["missing"])}
    with open(out / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["image", "median_mm", "mean_mm", "std_mm", "points"])
        writer.writeheader()
        writer.writerows(result["images"])
    thresholds, fraction = cumulative_error_curve(errors)
    np.savetxt(out / "cumulative_error.csv", np.stack([thresholds, fraction], 1),
               delimiter=",", header="error_mm,fraction", comments="")
    _plot_curve(out / "cumulative_error.png", thresholds, fraction, summary, title)
    (out / "summary.json").write_text(json.dumps(summary | {"missing_images":
                                                            result["missing"]}, indent=2))
    return summary


def _plot_curve(path, thresholds, fraction, summary, title):
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("the cumulative error plot needs matplotlib: pip install "
                          "matplotlib (the numbers are in cumulative_error.csv)") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.plot(thresholds, 100 * fraction,
            label=f"median {summary['median_mm']:.2f}, mean {summary['mean_mm']:.2f} mm")
    ax.set(xlabel="error (mm)", ylabel="scan points (%)", xlim=(0, thresholds[-1]),
           ylim=(0, 100), title=f"{title}: cumulative error ({summary['images']} images)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
