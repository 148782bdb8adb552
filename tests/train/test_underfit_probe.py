"""scripts/underfit_probe.py: with every BatchNorm's momentum set to 0, a train-mode
forward records exactly the batch's own statistics (what the precise statistics average)."""

import jax
import numpy as np
from flax import nnx

from jaxface.models.resnet import batch_norm
from tests.script_loader import load_script


class _TwoNorms(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(5, 7, rngs=rngs)
        self.first, self.second = batch_norm(5, rngs=rngs), batch_norm(7, rngs=rngs)

    def __call__(self, x):
        return self.second(self.linear(self.first(x)))


def test_zero_momentum_records_the_batch_statistics(rng):
    probe = load_script("underfit_probe")
    net = _TwoNorms(nnx.Rngs(int(rng.integers(2**31))))
    graphdef, params, stats = nnx.split(net, nnx.Param, nnx.BatchStat)
    # Running statistics far from the batch's: with the layer's own momentum they would leak in.
    stats = jax.tree.map(lambda a: np.full(a.shape, 3.0, a.dtype), stats)
    x = rng.normal(2.0, 1.5, (16, 5)).astype(np.float32)
    model = nnx.merge(probe.with_batch_statistics(graphdef, params, stats), params, stats)
    model.train()
    model(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(model.first.mean.get_value(), x64.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.first.var.get_value(), x64.var(0), rtol=1e-4, atol=1e-6)
    # The second layer sees the first one's train-mode output, as in the network.
    normed = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-5)
    hidden = normed @ np.asarray(params["linear"]["kernel"].get_value(), np.float64) + np.asarray(
        params["linear"]["bias"].get_value(), np.float64)
    np.testing.assert_allclose(model.second.mean.get_value(), hidden.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.second.var.get_value(), hidden.var(0), rtol=1e-3, atol=1e-5)
