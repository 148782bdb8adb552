"""Every experiment config in configs/ builds and trains 2 steps (small shapes): the paper's
stages, its Table 3 ablations and the embedded synthetic configs."""

import pathlib

import pytest

from jaxface.configs import load_config
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.train.loop import train_and_evaluate
from tests.train.test_loop import _planted_vgg19

CONFIGS = pathlib.Path(__file__).parents[2] / "configs"
# Every config with a train section, but those read by other commands: configs/fit.py
# (`jaxface fit`) and configs/deca.py, emoca.py (`jaxface import-deca` / `import-emoca`).
NOT_TRAINED = ("fit", "deca", "emoca")
EXPERIMENTS = sorted(str(p.relative_to(CONFIGS).with_suffix("")) for p in CONFIGS.rglob("*.py")
                     if "train" in load_config([f"--config={p}"]) and p.stem not in NOT_TRAINED)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate(out, identities=2, per_identity=3, seed=0, progress=False,
             settings=SynthSettings(image_size=128, uv_size=64, occluder_prob=0.0))
    return out


def _small(name, data, workdir, *extra):
    cfg = load_config([f"--config={CONFIGS / f'{name}.py'}"])
    # Small shapes: the smallest input where RGA works with GRPAM on, else 64; no identity
    # network (its own test covers it); one identity group per step.
    size = 128 if cfg.model.use_grpam else 64
    cfg = load_config([f"--config={CONFIGS / f'{name}.py'}",
                       f"--config.model.image_size={size}", "--config.model.uv_size=64",
                       "--config.loss.identity=0", f"--config.data.dir={data}",
                       "--config.data.identities_per_batch=1", "--config.data.workers=0",
                       f"--config.data.images_per_identity={min(cfg.data.images_per_identity, 3)}",
                       "--config.train.steps=2", "--config.train.log_every=1", *extra])
    return train_and_evaluate(cfg, workdir, progress=False), cfg


def test_every_training_config_is_listed():
    assert {"pretrain", "coarse", "detail", "synthetic", "synthetic_pretrain",
            "synthetic_detail", "learning"} | {f"ablation/{x}" for x in "abcdefgh"} == set(
                EXPERIMENTS)


def _is_detail(name: str) -> bool:
    return load_config([f"--config={CONFIGS / f'{name}.py'}"]).train.stage == "detail"


def _check_objective(out, cfg):
    assert out["step"] == 2 and out["finite"] == 1.0
    # The switches of Table 3 and the stages reach the objective.
    assert ("scl" in out) == bool(cfg.loss.scl and cfg.train.stage != "detail")
    assert ("mask" in out) == bool(cfg.loss.mask and cfg.train.stage != "detail")
    assert ("mrf" in out) == bool(cfg.loss.mrf and cfg.train.stage == "detail")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if not _is_detail(n)])
def test_config_trains_two_steps(name, data, tmp_path):
    _check_objective(*_small(name, data, tmp_path / "run"))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if _is_detail(n)])
def test_detail_config_trains_two_steps(name, data, tmp_path):
    """The detail stages start from a coarse run's E_c, with planted VGG19 weights."""
    _small("coarse", data, tmp_path / "coarse")   # its E_c, same network
    _check_objective(*_small(name, data, tmp_path / "run",
                             f"--config.train.init_from={tmp_path / 'coarse'}",
                             "--config.perceptual.vgg19_path="
                             f"{_planted_vgg19(tmp_path / 'vgg.npz')}"))
