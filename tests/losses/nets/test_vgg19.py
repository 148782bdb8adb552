import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.assets import AssetError
from jaxface.losses.nets.vgg19 import VGG19Features, load_vgg19

torch = pytest.importorskip("torch", reason="the reference VGG19 is written in PyTorch")
tnn = torch.nn


def _torch_vgg19_features():
    """torchvision's vgg19().features layout, written here (same module indices)."""
    layers, in_ch = [], 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                 512, 512, 512, 512, "M"):
        if item == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers += [tnn.Conv2d(in_ch, item, 3, padding=1), tnn.ReLU()]
            in_ch = item
    return tnn.Sequential(*layers)


def test_vgg19_matches_torch_with_torchvision_names(rng, tmp_path):
    torch.manual_seed(int(rng.integers(2**31)))
    features = _torch_vgg19_features().eval()
    sd = {f"features.{k}": v.numpy() for k, v in features.state_dict().items()}
    np.savez(tmp_path / "vgg19.npz", **sd)
    net = load_vgg19(VGG19Features("relu4_2", rngs=nnx.Rngs(0)), tmp_path / "vgg19.npz")
    x = rng.uniform(size=(2, 48, 40, 3)).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    normed = torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2).astype(np.float32))
    want = {}
    with torch.no_grad():
        h = normed
        for i, layer in enumerate(features):
            h = layer(h)
            if i in (13, 22):  # relu3_2, relu4_2
                want["relu3_2" if i == 13 else "relu4_2"] = h.numpy().transpose(0, 2, 3, 1)
            if i == 22:
                break
    got = net(jnp.asarray(x))
    for name in ("relu3_2", "relu4_2"):
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(np.asarray(got[name]), want[name], rtol=1e-4,
                                   atol=1e-4 * np.abs(want[name]).max())


def test_vgg19_errors(tmp_path):
    net = VGG19Features("relu3_2", rngs=nnx.Rngs(0))
    with pytest.raises(AssetError, match="not found.*vgg19"):
        load_vgg19(net, tmp_path / "vgg19.pth")
    with pytest.raises(AssetError, match="'features.0.weight' missing"):
        load_vgg19(net, {})
    with pytest.raises(ValueError, match="cannot give"):
        net(jnp.zeros((1, 16, 16, 3)), layers=("relu4_2",))
    with pytest.raises(ValueError, match="no layer 'relu9_1'"):
        VGG19Features("relu9_1", rngs=nnx.Rngs(0))


def test_perceptual_network_from_config(load_config, tmp_path):
    from jaxface.losses.nets.vgg19 import perceptual_network

    cfg = load_config("losses")
    with pytest.raises(AssetError, match="needs perceptual.vgg19_path.*vgg19-dcbb9e9d.pth"):
        perceptual_network(cfg)
    cfg.perceptual.vgg19_path = str(tmp_path / "vgg19-dcbb9e9d.pth")
    with pytest.raises(AssetError, match="not found.*vgg19-dcbb9e9d.pth"):
        perceptual_network(cfg)
    cfg.loss.mrf = 0.0
    assert perceptual_network(cfg) is None
