import pathlib

import pytest

from jaxface.configs import ConfigError, load_config

CONFIGS = pathlib.Path(__file__).parents[1] / "configs"
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
    assert cfg.optim.lr == 1e-4 and cfg.loss.identity == 0.2


def test_experiment_configs_load_and_override():
    cfg = load_config([f"--config={CONFIGS / 'coarse.py'}", "--config.optim.lr=3e-4",
                       "--config.data.dir=/data/x"])
    assert cfg.optim.lr == 3e-4 and cfg.data.dir == "/data/x"
    synthetic = load_config([f"--config={CONFIGS / 'synthetic.py'}"])
    assert synthetic.model.image_size == synthetic.render.image_size == 128
    resized = load_config([f"--config={CONFIGS / 'synthetic.py'}", "--config.model.image_size=64"])
    assert resized.render.image_size == 64  # the renderer follows the network's input size
    with pytest.raises(ConfigError, match="unknown config field"):
        load_config([f"--config={CONFIGS / 'coarse.py'}", "--config.optim.learning_rate=1"])
