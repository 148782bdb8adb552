"""The whole pipeline learns: a short CPU run on the synthetic default lowers the landmark
error well below the untrained network's (which predicts the mean face, frontal, at the base
camera: a strong baseline, not a random head)."""

import json
import pathlib

import pytest

from jaxface.configs import load_config
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.train.loop import train_and_evaluate

CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"


@pytest.mark.slow
def test_synthetic_training_lowers_the_landmark_error(tmp_path):
    data = tmp_path / "data"
    generate(data, identities=8, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64))
    cfg = load_config([f"--config={CONFIG}", "--config.model.image_size=64",
                       "--config.model.use_grpam=False", f"--config.data.dir={data}",
                       "--config.data.identities_per_batch=4", "--config.data.augment=False",
                       # Fit what it trains on: a few CPU minutes cannot generalise to new
                       # faces, but every part of the pipeline must move the right way.
                       "--config.data.eval_split=train", "--config.optim.lr=1e-3",
                       "--config.train.steps=200", "--config.train.eval_every=100",
                       "--config.train.log_every=20", "--config.train.checkpoint_every=1000"])
    out = train_and_evaluate(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 100, 200]
    first, last = evals[0], evals[-1]
    print("eval:", evals)
    assert last["landmark_px"] < 0.6 * first["landmark_px"], evals
    assert out["eval_landmark_px"] == last["landmark_px"]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert sum(losses[-3:]) < 0.7 * sum(losses[:3]), losses
