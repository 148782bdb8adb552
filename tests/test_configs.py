import pathlib
import re

import ml_collections
import pytest

from jaxface.configs import ConfigError, load_config

ROOT = pathlib.Path(__file__).parents[1]
CONFIGS = ROOT / "configs"
TABLE3 = {"a": (False, False, False), "b": (False, True, False), "c": (True, False, False),
          "d": (False, False, True), "e": (True, True, False), "f": (True, False, True),
          "g": (False, True, True), "h": (True, True, True)}


@pytest.mark.parametrize("name", sorted(TABLE3))
def test_ablation_configs_set_the_paper_switches(name):
    cfg = load_config([f"--config={CONFIGS / 'ablation' / f'{name}.py'}"])
    pim, grpam, loss = TABLE3[name]
    assert (cfg.model.use_priors, cfg.model.use_grpam) == (pim, grpam)
    assert (cfg.loss.mask > 0, cfg.loss.scl > 0) == (loss, loss)
    assert cfg.model.image_size == 224 and cfg.data.identities_per_batch == 6
    assert cfg.data.images_per_identity == 3       # the paper's batch of 18
    assert cfg.optim.lr == 1e-4 and cfg.loss.identity == 0.2


def test_experiment_configs_load_and_override():
    cfg = load_config([f"--config={CONFIGS / 'coarse.py'}", "--config.optim.lr=3e-4",
                       "--config.data.dir=/data/x"])
    assert cfg.optim.lr == 3e-4 and cfg.data.dir == "/data/x"
    with pytest.raises(ConfigError, match="unknown config field"):
        load_config([f"--config={CONFIGS / 'coarse.py'}", "--config.optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="unknown config field"):  # removed: model.image_size
        load_config([f"--config={CONFIGS / 'synthetic.py'}", "--config.render.image_size=64"])


def test_the_learning_experiments_variants():
    """configs/learning.py: the paper's objective, its landmark-anchored form (x10 landmark and
    eye terms, nothing else changed) and ablation (a) of each, with their pretraining."""
    def variant(name):
        return load_config([f"--config={CONFIGS / 'learning.py'}:{name}"])

    paper, anchored, base = variant(""), variant("anchored"), variant("base_anchored")
    assert (paper.loss.landmark, paper.loss.eye) == (1.0, 1.0)
    assert (anchored.loss.landmark, anchored.loss.eye) == (10.0, 10.0)
    assert anchored.loss.scl == paper.loss.scl > 0 and anchored.model.use_grpam
    assert base.loss.landmark == 10.0 and base.loss.scl == 0 and not base.model.use_grpam
    for name in ("pretrain", "base_pretrain"):
        cfg = variant(name)
        assert cfg.train.stage == "pretrain" and cfg.loss.landmark == 1.0
    assert variant("base_pretrain").model.use_priors is False
    with pytest.raises(ConfigError, match="unknown variant"):
        variant("nope")


def test_the_stages_are_decas():
    """pretrain (landmarks only, one image per identity) -> coarse -> detail (ID-MRF on: only
    the embedded synthetic configs turn it off)."""
    pretrain = load_config([f"--config={CONFIGS / 'pretrain.py'}"])
    assert pretrain.train.stage == "pretrain" and pretrain.data.images_per_identity == 1
    for term in ("pixel", "mask", "scl", "identity", "shape_consistency", "reg_albedo"):
        assert pretrain.loss[term] == 0, term
    assert pretrain.loss.landmark > 0 and pretrain.loss.eye > 0 and pretrain.loss.reg_shape > 0
    coarse = load_config([f"--config={CONFIGS / 'coarse.py'}"])
    assert coarse.train.stage == "coarse" and coarse.loss.pixel > 0
    detail = load_config([f"--config={CONFIGS / 'detail.py'}"])
    assert detail.train.stage == "detail" and detail.loss.mrf == 5e-2
    assert load_config([f"--config={CONFIGS / 'synthetic_detail.py'}"]).loss.mrf == 0
    synthetic_pretrain = load_config([f"--config={CONFIGS / 'synthetic_pretrain.py'}"])
    assert synthetic_pretrain.train.stage == "pretrain"
    # DECA's render and crops are the defaults.
    assert coarse.render.antialias is False and coarse.loss.identity_shape_only is True
    assert tuple(coarse.data.crop_scale_range) == (1.4, 1.8) and coarse.data.crop_scale == 1.375


def _leaves(cfg, prefix=""):
    for key, value in cfg.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_config_field_is_read_somewhere():
    """No dead settings: each field of every config appears in the package's code."""
    source = "\n".join(p.read_text() for p in (ROOT / "jaxface").rglob("*.py"))
    unread = set()
    for path in CONFIGS.rglob("*.py"):
        cfg = load_config([f"--config={path}"])
        for leaf in _leaves(cfg):
            name = leaf.rsplit(".", 1)[-1]
            if not re.search(rf"\.{name}\b|\[\"{name}\"\]", source):
                unread.add(leaf)
    assert not unread, sorted(unread)
