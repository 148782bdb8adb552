"""scripts/shape_gradient_probe.py: the aligned state reproduces each synthetic image (its
landmarks to a hundredth of a pixel on DECA's random training crops, its light exactly), and
with the shape at the truth too, the loss terms are at their floor."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.configs import load_config
from jaxface.data.pipeline import grouped_batches
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.models.params import light_from_code
from jaxface.reconstruction.assets import load_assets
from jaxface.reconstruction.predict import coarse_geometry
from jaxface.train.step import prepare_batch
from tests.script_loader import load_script

CONFIG = pathlib.Path(__file__).parents[2] / "configs" / "synthetic.py"


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    data = tmp_path_factory.mktemp("synth")
    generate(data, identities=2, per_identity=4, seed=3, progress=False,
             settings=SynthSettings(image_size=80, uv_size=64, occluder_prob=0.0))
    cfg = load_config([f"--config={CONFIG}", "--config.model.use_grpam=False",
                       "--config.model.image_size=64", "--config.model.uv_size=64",
                       f"--config.data.dir={data}", "--config.render.backend=jax"])
    return cfg, load_assets(cfg), load_script("shape_gradient_probe")


def test_the_aligned_state_reproduces_the_image(setting, rng):
    cfg, assets, probe = setting
    raw = grouped_batches(cfg.data.dir, 2, 4, int(rng.integers(1000)))[0]
    batch = prepare_batch({k: jnp.asarray(raw[k]) for k in ("image", "landmarks", "mask",
                                                             *probe.TRUTH_KEYS)},
                          jax.random.key(int(rng.integers(1000))), 0, cfg)
    b, sizes = batch["image"].shape[0], assets.sizes
    mean_face = {g: jnp.zeros((b, n)) for g, n in sizes.items()} | {
        "light": jnp.zeros((b, 9, 3))}
    aligned = probe.aligned_to_truth(mean_face, batch, assets, cfg)
    assert np.all(np.asarray(aligned["shape"]) == 0)            # the shape is left alone
    truth = aligned | {"shape": batch["shape"][:, :sizes["shape"]]}
    geo = coarse_geometry(truth, assets, cfg)
    error = np.abs(np.asarray(geo["landmarks"]) - np.asarray(batch["landmarks"]))
    assert error.max() < 0.01                                   # pixels at 64²
    np.testing.assert_allclose(np.asarray(light_from_code(aligned["light"])),
                               np.asarray(batch["light"]), atol=1e-5)
    # Every term is at its floor at the truth: the landmark terms ~0, the photometric ones far
    # below the mean face's (the same renderer drew the images).
    at_truth = probe.weighted_terms(truth["shape"], truth, batch, assets, cfg, 4)
    at_mean = probe.weighted_terms(aligned["shape"], aligned, batch, assets, cfg, 4)
    assert float(at_truth["landmark"]) < 1e-3 * float(at_mean["landmark"]) + 1e-6
    for term in ("pixel", "mask", "scl"):
        assert float(at_truth[term]) < 0.5 * float(at_mean[term])
