import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.assets import AssetError
from jaxface.models import ResNet50, count_params, stage_sizes
from jaxface.models.torchvision import load_torchvision_resnet50

torch = pytest.importorskip("torch", reason="the reference ResNet50 is written in PyTorch")
tnn = torch.nn


class _TorchBottleneck(tnn.Module):
    """torchvision's Bottleneck (v1.5), written here from its description; with
    ``stride_in_1x1`` the stride moves to the first 1x1 (Caffe's, the VGGFace2 model)."""

    def __init__(self, in_ch, width, stride, stride_in_1x1=False):
        super().__init__()
        out = width * 4
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = tnn.Conv2d(in_ch, width, 1, s1, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.conv2 = tnn.Conv2d(width, width, 3, s3, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(width)
        self.conv3 = tnn.Conv2d(width, out, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or in_ch != out:
            self.downsample = tnn.Sequential(tnn.Conv2d(in_ch, out, 1, stride, bias=False),
                                             tnn.BatchNorm2d(out))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu((x if self.downsample is None else self.downsample(x)) + y)


class _TorchResNet50(tnn.Module):
    """torchvision's resnet50 layout and parameter names (fc included, as in its files);
    ``caffe``: the VGGFace2 variant (1x1 strides, ceil-mode pooling without padding)."""

    def __init__(self, last_stride=2, caffe=False, classes=1000):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.maxpool = (tnn.MaxPool2d(3, 2, 0, ceil_mode=True) if caffe
                        else tnn.MaxPool2d(3, 2, 1))
        in_ch = 64
        for i, (n, w, s) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512),
                                          (1, 2, 2, last_stride), strict=True)):
            blocks = []
            for b in range(n):
                blocks.append(_TorchBottleneck(in_ch, w, s if b == 0 else 1, caffe))
                in_ch = w * 4
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.fc = tnn.Linear(2048, classes)

    def forward(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        stages = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            stages.append(x)
        return stages


def randomised_batch_norms(module):
    """``module`` in eval mode with non-trivial BatchNorm statistics and affine parameters."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return module.eval()


def _random_torch_resnet(rng, last_stride=2, caffe=False):
    torch.manual_seed(int(rng.integers(2**31)))
    return randomised_batch_norms(_TorchResNet50(last_stride, caffe,
                                                 classes=8631 if caffe else 1000))


def test_parameter_count_and_stage_shapes():
    net = nnx.eval_shape(lambda: ResNet50(3, rngs=nnx.Rngs(0)))
    assert count_params(nnx.state(net, nnx.Param)) == 23_508_032  # torchvision without fc
    for last_stride, c5 in ((1, (6, 5)), (2, (3, 3))):
        net = nnx.view(ResNet50(3, last_stride, rngs=nnx.Rngs(0)), use_running_average=True)
        out = jax.eval_shape(net, jax.ShapeDtypeStruct((2, 96, 80, 3), jnp.float32))
        assert [s.shape[1:3] for s in out.stages] == [(24, 20), (12, 10), (6, 5), c5]
        assert out.pooled.shape == (2, 2048)
    assert stage_sizes(224, 2) == (56, 28, 14, 7) and stage_sizes(224, 1) == (56, 28, 14, 14)


@pytest.mark.parametrize("last_stride", [2, 1])
def test_torchvision_weights_reproduce_the_torch_forward(rng, tmp_path, last_stride):
    ref = _random_torch_resnet(rng, last_stride)
    path = tmp_path / "resnet50.pth"
    torch.save(ref.state_dict(), path)
    net = load_torchvision_resnet50(ResNet50(3, last_stride, rngs=nnx.Rngs(0)), path)
    net = nnx.view(net, use_running_average=True)
    x = rng.normal(size=(2, 3, 64, 48)).astype(np.float32)
    with torch.no_grad():
        want = [s.numpy().transpose(0, 2, 3, 1) for s in ref(torch.from_numpy(x))]
    got = net(jnp.asarray(x.transpose(0, 2, 3, 1)))
    for g, w in zip(got.stages, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=1e-4 * np.abs(w).max())
    np.testing.assert_allclose(np.asarray(got.pooled), want[-1].mean((1, 2)), rtol=1e-4,
                               atol=1e-5)


def test_prior_channels_start_at_zero_and_npz_weights(rng, tmp_path):
    ref = _random_torch_resnet(rng)
    np.savez(tmp_path / "resnet50.npz", **{k: v.numpy() for k, v in ref.state_dict().items()})
    rgb = nnx.view(load_torchvision_resnet50(ResNet50(3, rngs=nnx.Rngs(0)),
                                             tmp_path / "resnet50.npz"), use_running_average=True)
    five = nnx.view(load_torchvision_resnet50(ResNet50(5, rngs=nnx.Rngs(1)),
                                              tmp_path / "resnet50.npz"), use_running_average=True)
    x = jnp.asarray(rng.normal(size=(1, 64, 64, 3)), jnp.float32)
    priors = jnp.asarray(rng.uniform(size=(1, 64, 64, 2)), jnp.float32)
    np.testing.assert_array_equal(np.asarray(five(jnp.concatenate([x, priors], -1)).pooled),
                                  np.asarray(rgb(x).pooled))
    assert np.all(np.asarray(five.conv1.kernel[...])[:, :, 3:] == 0)


def test_bad_weight_files_say_what_is_wrong(rng, tmp_path):
    net = ResNet50(3, rngs=nnx.Rngs(0))
    with pytest.raises(AssetError, match="not found.*torchvision"):
        load_torchvision_resnet50(net, tmp_path / "missing.pth")
    sd = {k: v.numpy() for k, v in _random_torch_resnet(rng).state_dict().items()}
    del sd["layer3.2.bn2.running_var"]
    with pytest.raises(AssetError, match="'layer3.2.bn2.running_var' missing"):
        load_torchvision_resnet50(net, sd)
    sd["layer3.2.bn2.running_var"] = np.ones(7, np.float32)
    with pytest.raises(AssetError, match=r"'layer3.2.bn2.running_var' has shape \(7,\)"):
        load_torchvision_resnet50(net, sd)


def test_imagenet_initialisation_fills_both_encoders(rng, tmp_path, load_config):
    """model.imagenet_weights: E_c's and E_d's ResNet50s start from torchvision's weights (the
    prior channels' extra filters at zero); the rest keeps its initialisation."""
    from jaxface.models import build_network, param_sizes
    from jaxface.models.torchvision import initialize_from_imagenet

    ref = _random_torch_resnet(rng)
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    np.savez(tmp_path / "resnet50.npz", **sd)
    cfg = load_config("model")
    cfg.image_size, cfg.use_grpam = 64, False
    net = build_network(cfg, param_sizes())
    head_before = np.asarray(net.coarse.head.fc1.kernel[...]).copy()
    initialize_from_imagenet(net, tmp_path / "resnet50.npz")
    want = sd["layer3.2.conv2.weight"].transpose(2, 3, 1, 0)
    for backbone in (net.coarse.backbone, net.detail_encoder.backbone):
        np.testing.assert_allclose(np.asarray(backbone.layer3[2].conv2.kernel[...]), want)
        np.testing.assert_allclose(np.asarray(backbone.bn1.mean[...]), sd["bn1.running_mean"])
    conv1 = np.asarray(net.coarse.backbone.conv1.kernel[...])
    np.testing.assert_allclose(conv1[:, :, :3], sd["conv1.weight"].transpose(2, 3, 1, 0))
    assert conv1.shape[2] == 5 and np.all(conv1[:, :, 3:] == 0)     # landmark + mask channels
    np.testing.assert_array_equal(np.asarray(net.coarse.head.fc1.kernel[...]), head_before)
