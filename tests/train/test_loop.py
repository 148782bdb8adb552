import json
import pathlib

import jax
import numpy as np
import pytest

from jaxface.cli import main
from jaxface.configs import load_config
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.train.checkpoint import Checkpoints
from jaxface.train.loop import train

CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate(out, identities=2, per_identity=2, seed=0, progress=False,
             settings=SynthSettings(image_size=64, uv_size=64, occluder_prob=0.0))
    return out


def _cfg(data, workdir, steps):
    return load_config([f"--config={CONFIG}", "--config.model.use_grpam=False",
                        "--config.model.image_size=64", "--config.render.image_size=64",
                        f"--config.data.dir={data}", "--config.data.identities_per_batch=1",
                        f"--config.train.workdir={workdir}", f"--config.train.steps={steps}",
                        "--config.train.checkpoint_every=2", "--config.train.log_every=1"])


def test_resumed_run_continues_bit_for_bit(data, tmp_path):
    straight = train(_cfg(data, tmp_path / "a", 4), progress=False)
    first = train(_cfg(data, tmp_path / "b", 2), progress=False)   # "killed" after step 2
    assert first["step"] == 2
    resumed = train(_cfg(data, tmp_path / "b", 4), progress=False)
    assert resumed["step"] == 4 and straight["step"] == 4
    assert resumed["loss"] == straight["loss"]
    a = Checkpoints(tmp_path / "a")
    b = Checkpoints(tmp_path / "b")
    assert a.latest_step() == b.latest_step() == 4
    state_a = a.manager.restore(4)
    state_b = b.manager.restore(4)
    jax.tree.map(np.testing.assert_array_equal, state_a, state_b)
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert main(["train", f"--config={CONFIG}", f"--config.data.dir={tmp_path / 'none'}",
                 f"--config.train.workdir={tmp_path / 'w'}"]) == 2
    assert "no dataset at data.dir" in capsys.readouterr().err
