"""Every experiment config of the paper builds and trains 2 steps (small shapes)."""

import pathlib

import pytest

from jaxface.configs import load_config
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.train.loop import train_and_evaluate

CONFIGS = pathlib.Path(__file__).parents[2] / "configs"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate(out, identities=2, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=128, uv_size=64, occluder_prob=0.0))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", "abcdefgh")
def test_ablation_config_trains_two_steps(name, data, tmp_path):
    cfg = load_config([f"--config={CONFIGS / 'ablation' / f'{name}.py'}"])
    # Small shapes: the smallest input where RGA works with GRPAM on, else 64; no identity
    # network (its own test covers it); one identity group of 2 per step.
    size = 128 if cfg.model.use_grpam else 64
    cfg = load_config([f"--config={CONFIGS / 'ablation' / f'{name}.py'}",
                       f"--config.model.image_size={size}", "--config.model.uv_size=64",
                       "--config.loss.identity=0", f"--config.data.dir={data}",
                       "--config.data.identities_per_batch=1", "--config.data.workers=0",
                       "--config.data.images_per_identity=2",
                       "--config.train.steps=2", "--config.train.log_every=1"])
    out = train_and_evaluate(cfg, tmp_path, progress=False)
    assert out["step"] == 2 and out["finite"] == 1.0
    # The switches of Table 3 reach the objective.
    assert ("scl" in out) == bool(cfg.loss.scl) and ("mask" in out) == bool(cfg.loss.mask)
