"""Inference speed: photos/s of the model alone and of ``jaxface reconstruct`` end to end.

    python benchmarks/inference.py [--size 224] [--batch-sizes 1 8] [--photos 16]

The network is the paper's (configs/synthetic.py's heads at ``--size``, GRPAM and PIM on),
untrained: speed does not depend on the weights. Rows:

* ``predict``: the jit-compiled inference function (E_c, E_d, F_d, FLAME, the neutral mesh);
* ``reconstruct step``: that plus the three renders and the detail surface reconstruct draws;
* ``end to end``: ``jaxface reconstruct`` over ``--photos`` files (scikit-image's astronaut
  and matplotlib's grace_hopper, repeated): decoding, dlib detection and landmarks, crop,
  mask, the step, and writing every file (meshes, PNGs, npz/json), after a warm-up run.

Ratios are against ``predict`` at batch 1 in the same process.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from timing import median_seconds

from jaxface.configs import load_config
from jaxface.export.model_dir import write_model
from jaxface.infer.reconstruct import make_reconstruct_step, reconstruct
from jaxface.reconstruction.model_folder import model_from_config
from jaxface.reconstruction.predict import predict

CONFIG = pathlib.Path(__file__).parents[1] / "configs" / "synthetic.py"


def sample_photos(folder: pathlib.Path, n: int) -> None:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos = [skimage.data.astronaut(), np.asarray(Image.open(f).convert("RGB"))]
    for i in range(n):
        Image.fromarray(photos[i % 2]).save(folder / f"photo_{i:03d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224, help="the network's input side")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cfg = load_config([f"--config={CONFIG}", f"--config.model.image_size={args.size}"])
    model = model_from_config(cfg)
    print(f"# {platform.processor() or platform.machine()}, {jax.devices()[0].device_kind}, "
          f"jax {jax.__version__}; input {args.size}², GRPAM {cfg.model.use_grpam}, PIM "
          f"{cfg.model.use_priors}, UV {cfg.model.uv_size}²")
    print("| what | batch | s / batch | photos/s | vs predict @1 |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    reference = None

    def row(what, batch, seconds):
        nonlocal reference
        reference = reference or seconds / batch
        print(f"| {what} | {batch} | {seconds:.3f} | {batch / seconds:.2f} | "
              f"{reference / (seconds / batch):.2f}x |", flush=True)

    predict_fn = jax.jit(lambda p, s, b: predict(model.graphdef, p, s, b, model.assets, cfg))
    recon_fn = make_reconstruct_step(model, 224)
    for batch_size in args.batch_sizes:
        size = args.size
        batch = {"image": jnp.asarray(rng.random((batch_size, size, size, 3)), jnp.float32),
                 "landmarks": jnp.asarray(rng.random((batch_size, 68, 2)) * size, jnp.float32),
                 "mask": jnp.ones((batch_size, size, size, 1), jnp.float32)}
        row("predict", batch_size, median_seconds(
            lambda b=batch: predict_fn(model.params, model.batch_stats, b), args.repeats))
        crop = {k: jax.image.resize(v, (batch_size, 224, 224, v.shape[-1]), "linear")
                if v.ndim == 4 else v * 224 / size for k, v in batch.items()}
        row("reconstruct step", batch_size, median_seconds(
            lambda b=crop: recon_fn(model.params, model.batch_stats, b), args.repeats))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        write_model(tmp / "model", cfg, model.assets, model.params, model.batch_stats,
                    {"run": "untrained (benchmark)", "checkpoint": "none", "step": 0})
        (tmp / "photos").mkdir()
        sample_photos(tmp / "photos", args.photos)
        from jaxface.data.landmarks import landmark_backend

        detector = landmark_backend("dlib")
        batch_size = max(args.batch_sizes)
        for _ in range(2):      # the first run compiles
            shutil.rmtree(tmp / "out", ignore_errors=True)
            start = time.perf_counter()
            report = reconstruct(tmp / "model", [tmp / "photos"], tmp / "out", detector,
                                 batch_size, progress=False)
            seconds = time.perf_counter() - start
        assert len(report["ok"]) == args.photos, report["failed"]
        row(f"end to end ({args.photos} photos)", batch_size,
            seconds / args.photos * batch_size)


if __name__ == "__main__":
    main()
