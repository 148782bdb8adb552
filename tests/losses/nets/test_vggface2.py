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
tnn = torch.nn


class _CaffeBottleneck(tnn.Module):
    """cydonia999's VGGFace2 ResNet50 block: the stride on the first 1x1 convolution."""

    def __init__(self, in_ch, width, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(in_ch, width, 1, stride, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.conv2 = tnn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(width)
        self.conv3 = tnn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(width * 4)
        self.downsample = None
        if stride != 1 or in_ch != width * 4:
            self.downsample = tnn.Sequential(tnn.Conv2d(in_ch, width * 4, 1, stride, bias=False),
                                             tnn.BatchNorm2d(width * 4))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu((x if self.downsample is None else self.downsample(x)) + y)


class _CaffeResNet50(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.maxpool = tnn.MaxPool2d(3, 2, 0, ceil_mode=True)
        in_ch = 64
        for i, (n, w, s) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), (1, 2, 2, 2),
                                          strict=True)):
            blocks = []
            for b in range(n):
                blocks.append(_CaffeBottleneck(in_ch, w, s if b == 0 else 1))
                in_ch = w * 4
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.fc = tnn.Linear(2048, 8631)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        return x.mean((2, 3))


def test_vggface2_pickle_reproduces_the_torch_network(rng, tmp_path):
    torch.manual_seed(int(rng.integers(2**31)))
    ref = _CaffeResNet50()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    ref.eval()
    # DECA's file: a pickled dict of names to float32 arrays (num_batches_tracked not stored).
    weights = {k: v.numpy() for k, v in ref.state_dict().items() if "num_batches" not in k}
    with open(tmp_path / "resnet50_ft_weight.pkl", "wb") as f:
        pickle.dump(weights, f)
    net = load_vggface2(vggface2_resnet50(rngs=nnx.Rngs(0)), tmp_path / "resnet50_ft_weight.pkl")
    net = nnx.view(net, use_running_average=True)
    rgb = rng.uniform(size=(2, 64, 64, 3)).astype(np.float32)
    x = vggface2_input(jnp.asarray(rgb), size=57)  # odd size: exercises ceil-mode pooling
    with torch.no_grad():
        want = ref(torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())).numpy()
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
