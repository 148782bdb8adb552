import pickle

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.assets import AssetError
from jaxface.losses.nets.vggface2 import (
    MEAN_BGR,
    identity_features,
    load_vggface2,
    vggface2_input,
    vggface2_resnet50,
)

torch = pytest.importorskip("torch", reason="the reference network is written in PyTorch")

from tests.models.test_resnet import _random_torch_resnet  # noqa: E402


def test_vggface2_pickle_reproduces_the_torch_network(rng, tmp_path):
    ref = _random_torch_resnet(rng, caffe=True)
    # DECA's file: a pickled dict of names to float32 arrays (num_batches_tracked not stored).
    weights = {k: v.numpy() for k, v in ref.state_dict().items() if "num_batches" not in k}
    with open(tmp_path / "resnet50_ft_weight.pkl", "wb") as f:
        pickle.dump(weights, f)
    net = load_vggface2(vggface2_resnet50(rngs=nnx.Rngs(0)), tmp_path / "resnet50_ft_weight.pkl")
    net = nnx.view(net, use_running_average=True)
    rgb = rng.uniform(size=(2, 64, 64, 3)).astype(np.float32)
    x = vggface2_input(jnp.asarray(rgb), size=57)  # odd size: exercises ceil-mode pooling
    with torch.no_grad():
        stages = ref(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy()))
        want = stages[-1].mean((2, 3)).numpy()
    got = np.asarray(net(x).pooled)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert identity_features(net, jnp.asarray(rgb)).shape == (2, 2048)


def test_vggface2_preprocessing():
    """A horizontal ramp stays a ramp: BGR x 255 minus the mean, the 10-pixel margin cut and
    the 204 remaining columns stretched back to 224 (half-pixel centres)."""
    ramp = np.broadcast_to(np.arange(224, dtype=np.float32)[None, :, None] / 223, (224, 224, 3))
    ramp = ramp * np.array([0.2, 0.5, 1.0], np.float32)  # R, G, B slopes differ
    x = np.asarray(vggface2_input(jnp.asarray(ramp[None])))[0]
    j = np.arange(5, 219)
    source_col = 10 + (j + 0.5) * 204 / 224 - 0.5
    for c_bgr, slope in enumerate((1.0, 0.5, 0.2)):
        want = source_col / 223 * slope * 255 - MEAN_BGR[c_bgr]
        np.testing.assert_allclose(x[100, j, c_bgr], want, rtol=1e-5, atol=1e-3)


def test_vggface2_missing_file(tmp_path):
    with pytest.raises(AssetError, match="VGGFace2 weights not found.*DECA"):
        load_vggface2(vggface2_resnet50(rngs=nnx.Rngs(0)), tmp_path / "resnet50_ft_weight.pkl")
