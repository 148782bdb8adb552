"""The NoW benchmark end to end: the dataset's layout, predictions in the official layout,
the per-image evaluation and the report (``jaxface now-predict`` / ``jaxface evaluate-now``).

NoW (https://now.is.tue.mpg.de, manual download) unpacks to::

    NoW_Dataset/final_release_version/
      imagepathsvalidation.txt, imagepathstest.txt     <subject>/<challenge>/<image>.jpg
      iphone_pictures/<subject>/<challenge>/<image>.jpg
      scans/<subject>/<name>.obj                       one scan per subject (mm)
      scans_lmks_onlypp/<subject>/<name>.pp            its 7 picked landmarks

Predictions follow the official evaluation code: ``<pred>/<subject>/<challenge>/<image>.obj``
(the neutral mesh) and ``<image>.npy`` (its 7 landmarks, 7 x 3), so the same folder can be
submitted to the official test-split evaluation.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import time

import numpy as np

from jaxface.eval.now import NOW_FROM_68, crop_scan, cumulative_error_curve, fit_to_scan, read_pp

SPLITS = {"val": "imagepathsvalidation.txt", "test": "imagepathstest.txt"}


class NowLayoutError(FileNotFoundError):
    """The NoW folder is not laid out as the dataset unpacks."""


def now_root(path: str | os.PathLike) -> pathlib.Path:
    """The ``final_release_version`` folder, given it or the folder above it."""
    path = pathlib.Path(path)
    for root in (path, path / "final_release_version"):
        if (root / SPLITS["val"]).is_file() or (root / "scans").is_dir():
            return root
    raise NowLayoutError(f"{path}: not the NoW dataset (expected {SPLITS['val']} and scans/ "
                         "in it or in final_release_version/; download it from "
                         "https://now.is.tue.mpg.de)")


def image_list(root: pathlib.Path, split: str) -> list[str]:
    """The split's images as ``<subject>/<challenge>/<image>.jpg``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    path = root / SPLITS[split]
    if not path.is_file():
        raise NowLayoutError(f"{path}: missing (the {split} split's image list)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


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


def predict_now(model_dir: str | os.PathLike, now: str | os.PathLike, out: str | os.PathLike,
                detector, split: str = "val", batch_size: int = 8, progress: bool = True
                ) -> dict:
    """Runs a model on the split's photos and writes the predictions in the official layout
    (the neutral mesh and its 7 landmarks); returns {"ok": [...], "failed": {image: why}}."""
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from jaxface.data.prepare import prepare_image, prepared_batches
    from jaxface.export.model_dir import load_model
    from jaxface.infer.mesh_io import write_obj
    from jaxface.infer.predict import predict

    root, out = now_root(now), pathlib.Path(out)
    model = load_model(model_dir)
    faces = np.asarray(model.assets.model.faces)
    step = jax.jit(lambda p, s, b: predict(model.graphdef, p, s, b, model.assets, model.cfg))
    report: dict = {"ok": [], "failed": {}}
    images = image_list(root, split)
    start = time.perf_counter()
    photos = tqdm(images, desc=f"NoW {split} predict", unit="img", disable=not progress)
    for names, _, batch in prepared_batches(
            photos, lambda image: prepare_image(root / "iphone_pictures" / image, detector),
            batch_size, report["failed"]):
        res = jax.device_get(step(model.params, model.batch_stats,
                                  {k: jnp.asarray(v) for k, v in batch.items()}))
        for i, image in enumerate(names):
            stem = out / pathlib.Path(image).with_suffix("")
            stem.parent.mkdir(parents=True, exist_ok=True)
            write_obj(stem.with_suffix(".obj"), res["neutral_vertices"][i], faces)
            np.save(stem.with_suffix(".npy"), res["neutral_landmarks3d"][i][NOW_FROM_68])
            report["ok"].append(image)
    report["seconds"] = round(time.perf_counter() - start, 3)
    out.mkdir(parents=True, exist_ok=True)
    (out / "predict_report.json").write_text(json.dumps(report, indent=2))
    return report
