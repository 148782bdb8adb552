"""The whole pipeline learns. Short CPU runs on the synthetic default, evaluated on their
training images:

* the paper's self-supervised objective lowers the landmark error well below the untrained
  network's (which predicts the mean face, frontal, at the base camera: a strong baseline);
* with the synthetic data's ground-truth parameters added to it (``loss.ground_truth``, not
  in the paper), the 3-D shape error falls too. At 64² a millimetre of identity shape is a
  fraction of a pixel, so a few CPU minutes of self-supervision alone do not reduce it
  (docs/benchmarks.md); the supervised run shows gradients reach shape through the encoder.
"""

import json
import pathlib

import pytest

from jaxface.configs import load_config
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.train.loop import train_and_evaluate
from tests.script_loader import load_script

CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"
LEARNING = CONFIG.parent / "learning.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    generate(out, identities=8, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64))
    return out


def _run(data, workdir, *overrides):
    cfg = load_config([f"--config={CONFIG}", "--config.model.image_size=64",
                       "--config.model.use_grpam=False", f"--config.data.dir={data}",
                       "--config.data.identities_per_batch=4", "--config.data.augment=False",
                       "--config.data.images_per_identity=2",
                       # Fit what it trains on: a few CPU minutes cannot generalise to new
                       # faces, but every part of the pipeline must move the right way.
                       "--config.data.eval_split=train", "--config.optim.lr=1e-3",
                       "--config.train.steps=200", "--config.train.eval_every=100",
                       "--config.train.log_every=20", "--config.train.checkpoint_every=1000",
                       *overrides])
    out = train_and_evaluate(cfg, workdir, progress=False)
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    print("eval:", evals)
    assert [r["step"] for r in evals] == [0, 100, 200]
    assert out["eval_landmark_px"] == evals[-1]["landmark_px"]
    return evals, [r["loss"] for r in rows if r["kind"] == "train"]


@pytest.mark.slow
def test_self_supervised_training_lowers_the_landmark_error(data, tmp_path):
    evals, losses = _run(data, tmp_path)
    assert evals[-1]["landmark_px"] < 0.6 * evals[0]["landmark_px"], evals
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3]), losses


@pytest.mark.slow
def test_with_ground_truth_the_shape_error_falls(data, tmp_path):
    evals, _ = _run(data, tmp_path, "--config.loss.ground_truth=10.0")
    first, last = evals[0], evals[-1]
    assert last["shape_mm"] < 0.5 * first["shape_mm"], evals
    assert last["mesh_mm"] < 0.5 * first["mesh_mm"], evals
    assert last["landmark_px"] < 0.6 * first["landmark_px"], evals


@pytest.mark.slow
def test_self_supervised_shape_falls_below_the_mean_face_on_its_training_images(tmp_path):
    """docs/results.md section 2 at 64² (~10 min on 2 cores): ablation (a) on 16 images of 4
    identities, landmark pretraining (600 steps) then the anchored coarse objective (400
    steps), both with a cosine-decayed step, no ground truth in any term. On the images it
    trains on, the regressor's identity shape ends below the mean face's (0.90 x when
    recorded). On held-out identities it does not yet: that run needs hours (results.md)."""
    data = tmp_path / "data"
    generate(data, identities=4, per_identity=4, seed=1, progress=False,
             settings=SynthSettings(image_size=80, occluder_prob=0.0))
    common = [f"--config.data.dir={data}", "--config.model.image_size=64",
              "--config.model.uv_size=64", "--config.optim.schedule=cosine",
              "--config.train.checkpoint_every=1000", "--config.train.log_every=100"]
    pretrain = load_config([f"--config={LEARNING}:base_pretrain", *common,
                            "--config.data.identities_per_batch=4",
                            "--config.train.steps=600", "--config.train.eval_every=600"])
    train_and_evaluate(pretrain, tmp_path / "pretrain", progress=False)
    coarse = load_config([f"--config={LEARNING}:base_anchored", *common,
                          f"--config.train.init_from={tmp_path / 'pretrain'}",
                          "--config.data.eval_split=train", "--config.train.steps=400",
                          "--config.train.eval_every=400"])
    out = train_and_evaluate(coarse, tmp_path / "coarse", progress=False)
    baseline = load_script("mean_face_errors").mean_face_errors(coarse)
    print("trained:", out, "mean face:", baseline)
    assert out["eval_shape_sim_mm"] < 0.95 * baseline["shape_sim_mm"], (out, baseline)
    assert out["eval_mesh_sim_mm"] < 0.9 * baseline["mesh_sim_mm"], (out, baseline)
