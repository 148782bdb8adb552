"""The mean-face baseline of a training config's evaluation: the errors of `jaxface train`'s
eval (the same images of ``data.eval_split``, framed the same way) when every parameter is
zero — what the learning curves of scripts/plot_learning.py are measured against.

    python scripts/mean_face_errors.py --config=configs/learning.py --out runs/mean_face.json

(A run's own step-0 eval is the mean face only for a network trained from scratch, and only
approximately; a run that starts from another's weights, or a pretraining run that evaluates
one image per identity, needs this.)
"""

import argparse
import json
import pathlib

from jaxface.configs import load_config
from jaxface.data.pipeline import eval_batches
from jaxface.geometry.framing import frame_batch
from jaxface.infer.fit import mean_face
from jaxface.reconstruction.assets import jit_with_assets, load_assets
from jaxface.reconstruction.predict import coarse_geometry, reconstruction_errors
from jaxface.train.periodic import mean_errors


def mean_face_errors(cfg) -> dict[str, float]:
    """The eval's mean errors over ``cfg.data.eval_split`` when every parameter is zero."""
    assets = load_assets(cfg)
    data = eval_batches(cfg.data.dir, cfg.data.identities_per_batch,
                        cfg.data.images_per_identity, cfg.data.eval_split)
    if data is None:
        raise SystemExit(f"{cfg.data.dir} has no {cfg.data.eval_split!r} split")

    def errors(batch, assets):
        batch = frame_batch(batch, cfg.model.image_size, cfg.data.crop_scale)
        p = mean_face(batch["image"].shape[0], assets.sizes)
        return reconstruction_errors(coarse_geometry(p, assets, cfg), p["shape"], batch,
                                     assets.model)

    step = jit_with_assets(errors, assets)
    return mean_errors(lambda params, stats, batch: step(batch), None, None, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="also write the errors to this JSON file")
    args, config_args = parser.parse_known_args()
    cfg = load_config(config_args)
    mean = mean_face_errors(cfg)
    print(f"mean face on the {cfg.data.eval_split} split: " + ", ".join(
        f"{k} {v:.3f}" for k, v in mean.items()))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(mean, indent=2))


if __name__ == "__main__":
    main()
