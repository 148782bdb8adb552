"""``jaxface now-predict``: a model on the NoW split's photos -> predictions in the official
layout (:mod:`jaxface.data.now_layout`), for ``jaxface evaluate-now`` or NoW's own server."""

from __future__ import annotations

import json
import os
import pathlib
import time

import numpy as np

from jaxface.data.now_layout import NOW_FROM_68, image_list, now_root
from jaxface.reconstruction.assets import jit_with_assets


def predict_now(model_dir: str | os.PathLike, now: str | os.PathLike, out: str | os.PathLike,
                detector, split: str = "val", batch_size: int = 8, progress: bool = True
                ) -> dict:
    """Runs a model on the split's photos and writes the predictions in the official layout
    (the neutral mesh and its 7 landmarks); returns {"ok": [...], "failed": {image: why}}."""
    import jax
    import jax.numpy as jnp
    from tqdm import tqdm

    from jaxface.data.prepare import prepare_image, prepared_batches
    from jaxface.reconstruction.mesh_io import write_obj
    from jaxface.reconstruction.model_folder import load_model
    from jaxface.reconstruction.predict import predict

    root, out = now_root(now), pathlib.Path(out)
    model = load_model(model_dir)
    faces = np.asarray(model.assets.model.faces)
    step = jit_with_assets(lambda p, s, b, assets: predict(model.graphdef, p, s, b, assets,
                                                           model.cfg), model.assets)
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
