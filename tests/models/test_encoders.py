"""E_c with GRPAM: RGA in line in the backbone, checked against a float64 reference built from
independent parts (a PyTorch ResNet50 with torchvision's names, the NumPy port of the
official RGA forward, a PyTorch FPN, the MLP head in NumPy)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.models.encoders import CoarseEncoder
from tests.models.test_rga import _randomized, _reference_rga, _weights

torch = pytest.importorskip("torch", reason="the reference backbone is written in PyTorch")

from tests.models.test_resnet import _TorchResNet50  # noqa: E402

SIZE, RATIOS = 64, dict(cha_ratio=4, spa_ratio=4, down_ratio=2)


def _encoder(rng, n_params=7):
    enc = CoarseEncoder(3, n_params, SIZE, use_grpam=True, last_stride=1, fpn_width=8,
                        hidden=16, **RATIOS, rngs=nnx.Rngs(0))
    # Small kernels keep 50 random layers in a sane range; every BatchNorm non-trivial.
    return nnx.view(_randomized(enc, rng, kernel_std=0.05), use_running_average=True)


def _torch_backbone(enc):
    """The jaxface backbone's weights in a float64 PyTorch ResNet50 (torchvision names)."""
    net = _TorchResNet50(last_stride=1).double().eval()
    sd = net.state_dict()
    leaf = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
            "var": "running_var"}
    for path, value in _weights(enc.backbone).items():
        *parts, last = path.split(".")
        name = ".".join(parts + [leaf[last]])
        value = value.transpose(3, 2, 0, 1) if last == "kernel" else value
        sd[name] = torch.from_numpy(np.ascontiguousarray(value))
    net.load_state_dict(sd)
    return net


def _reference_features(enc, x_nhwc):
    """E_c's head input, float64: each ResNet stage's output goes through the official RGA
    forward pass before the next stage; the FPN fuses the attended outputs."""
    net = _torch_backbone(enc)
    x = torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2))
    attended = []
    with torch.no_grad():
        x = net.maxpool(torch.relu(net.bn1(net.conv1(x))))
        for layer, rga in zip((net.layer1, net.layer2, net.layer3, net.layer4),
                              enc.grpam.rga, strict=True):
            out, _, _ = _reference_rga(layer(x).numpy(), _weights(rga), train=False)
            attended.append(out)
            x = torch.from_numpy(out)
        fpn = enc.grpam.fpn

        def conv(c, t, pad):
            w = torch.from_numpy(np.asarray(c.kernel[...]).transpose(3, 2, 0, 1).copy())
            return torch.nn.functional.conv2d(t, w, torch.from_numpy(np.array(c.bias[...])),
                                              padding=pad)

        lat = [conv(c, torch.from_numpy(a), 0) for c, a in zip(fpn.lateral, attended,
                                                               strict=True)]
        top = [lat[3]]
        for level in (2, 1, 0):
            top.insert(0, lat[level] + torch.nn.functional.interpolate(
                top[0], size=lat[level].shape[-2:], mode="nearest"))
        pyramid = [conv(c, t, 1).numpy() for c, t in zip(fpn.output, top, strict=True)]
    return np.concatenate([p.mean((2, 3)) for p in pyramid], -1)


def test_coarse_encoder_matches_a_float64_reference_with_rga_in_line(rng, x64):
    enc = _encoder(rng)
    x = rng.normal(size=(2, SIZE, SIZE, 3))
    want_features = _reference_features(enc, x)
    got_features = np.asarray(enc.features(jnp.asarray(x)))
    np.testing.assert_allclose(got_features, want_features, rtol=1e-9,
                               atol=1e-12 * np.abs(want_features).max())
    w = _weights(enc.head)
    hidden = np.maximum(want_features @ w["fc1.kernel"] + w["fc1.bias"], 0)
    np.testing.assert_allclose(np.asarray(enc(jnp.asarray(x))),
                               hidden @ w["fc2.kernel"] + w["fc2.bias"], rtol=1e-9, atol=1e-14)


def test_stage_k_attention_changes_what_stage_k_plus_1_sees(rng, x64):
    """In line, not a side branch: changing the attention after stage 1 changes stage 2's
    raw output (what stage 2's own RGA receives)."""
    enc = _encoder(rng)
    x = jnp.asarray(rng.normal(size=(1, SIZE, SIZE, 3)))
    seen = {}

    def recorder(i):
        def hook(feature):
            seen[i] = np.asarray(feature)
            return enc.grpam.rga[i](feature)
        return hook

    hooks = [recorder(i) for i in range(4)]
    enc.backbone(x, after_stage=hooks)
    before = dict(seen)
    bias = enc.grpam.rga[0].spatial.w2.bn.bias
    bias[...] = bias[...] + 1.0        # stage 1's spatial attention logits shift
    enc.backbone(x, after_stage=hooks)
    np.testing.assert_array_equal(seen[0], before[0])      # stage 1 itself is unchanged
    for i in (1, 2, 3):
        assert np.abs(seen[i] - before[i]).max() > 1e-6 * np.abs(before[i]).max()
