import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxface.models import (
    FPN,
    camera_from_code,
    decode_params,
    flame_pose,
    landmark_heatmaps,
    light_from_code,
    network_input,
    param_sizes,
    prior_channels,
)
from jaxface.models.fpn import upsample_nearest_to

torch = pytest.importorskip("torch", reason="the FPN reference is written in PyTorch")


@pytest.mark.parametrize("src,dst", [((7, 7), (14, 14)), ((14, 14), (28, 28)), ((5, 3), (13, 8))])
def test_nearest_upsampling_matches_torch(rng, src, dst):
    x = rng.normal(size=(2, 3) + src).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x), size=dst, mode="nearest")
    got = upsample_nearest_to(jnp.asarray(x.transpose(0, 2, 3, 1)), *dst)
    np.testing.assert_array_equal(np.asarray(got), want.numpy().transpose(0, 2, 3, 1))


def test_fpn_matches_a_torch_fpn(rng):
    """The top-down pathway written in PyTorch here, with the same weights."""
    channels, width, sides = (8, 16, 32, 64), 12, (16, 8, 4, 4)
    fpn = FPN(channels, width, rngs=nnx.Rngs(int(rng.integers(1000))))
    stages = [rng.normal(size=(2, s, s, c)).astype(np.float32)
              for s, c in zip(sides, channels, strict=True)]

    def torch_conv(conv, x_nchw, pad):
        w = torch.from_numpy(np.asarray(conv.kernel[...]).transpose(3, 2, 0, 1).copy())
        b = torch.from_numpy(np.array(conv.bias[...]))
        return torch.nn.functional.conv2d(x_nchw, w, b, padding=pad)

    lat = [torch_conv(c, torch.from_numpy(x.transpose(0, 3, 1, 2)), 0)
           for c, x in zip(fpn.lateral, stages, strict=True)]
    top = [lat[3]]
    for level in (2, 1, 0):
        top.insert(0, lat[level] + torch.nn.functional.interpolate(
            top[0], size=lat[level].shape[-2:], mode="nearest"))
    want = [torch_conv(c, t, 1).numpy().transpose(0, 2, 3, 1)
            for c, t in zip(fpn.output, top, strict=True)]
    got = fpn(tuple(jnp.asarray(x) for x in stages))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4, atol=1e-5)


def test_landmark_heatmaps_are_gaussians_at_the_landmarks(rng):
    h, w, sigma = 20, 24, 1.5
    lmk = rng.uniform([0, 0], [w, h], size=(2, 68, 2))
    per = np.asarray(landmark_heatmaps(jnp.asarray(lmk), h, w, sigma, per_landmark=True))
    one = np.asarray(landmark_heatmaps(jnp.asarray(lmk), h, w, sigma, per_landmark=False))
    b, k = rng.integers(2), rng.integers(68)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    want = np.exp(-((cols - lmk[b, k, 0]) ** 2 + (rows - lmk[b, k, 1]) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(per[b, ..., k], want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(one[..., 0], per.max(-1), rtol=1e-6)
    assert per.shape == (2, h, w, 68) and one.shape == (2, h, w, 1)


def test_network_input_channels_and_errors(rng):
    image = jnp.asarray(rng.uniform(size=(2, 16, 16, 3)), jnp.float32)
    lmk = jnp.asarray(rng.uniform(0, 16, size=(2, 68, 2)), jnp.float32)
    mask = jnp.ones((2, 16, 16, 1))
    assert network_input(image, None, None, False, 1, 2.0) is image
    for channels in (1, 68):
        x = network_input(image, lmk, mask, True, channels, 2.0)
        assert x.shape == (2, 16, 16, 3 + prior_channels(True, channels))
        np.testing.assert_array_equal(np.asarray(x[..., :3]), np.asarray(image))
        np.testing.assert_array_equal(np.asarray(x[..., -1:]), np.asarray(mask))
    with pytest.raises(ValueError, match="needs 'landmarks' and 'mask'"):
        network_input(image, lmk, None, True, 1, 2.0)
    with pytest.raises(ValueError, match="landmark_channels must be 1 .* or 68"):
        prior_channels(True, 5)


def test_decode_params_names_the_groups(rng):
    sizes = param_sizes(n_shape=10, n_tex=7, n_exp=5)
    code = rng.normal(size=(3, 10 + 7 + 5 + 6 + 3 + 27)).astype(np.float32)
    p = decode_params(jnp.asarray(code), sizes)
    np.testing.assert_array_equal(np.asarray(p["shape"]), code[:, :10])
    np.testing.assert_array_equal(np.asarray(p["exp"]), code[:, 17:22])
    np.testing.assert_array_equal(np.asarray(p["cam"]), code[:, 28:31])
    np.testing.assert_array_equal(np.asarray(p["light"]), code[:, 31:].reshape(3, 9, 3))
    full = np.asarray(flame_pose(p["pose"]))
    np.testing.assert_array_equal(full[:, :3], code[:, 22:25])
    np.testing.assert_array_equal(full[:, 6:9], code[:, 25:28])
    assert np.all(full[:, 3:6] == 0) and np.all(full[:, 9:] == 0)
    with pytest.raises(ValueError, match="code has 5 values"):
        decode_params(jnp.zeros((1, 5)), sizes)


@pytest.mark.parametrize("convention", ["jaxface", "deca"])
def test_camera_and_light_codes_invert(rng, convention):
    from jaxface.models.params import code_of_camera, code_of_light

    cam = np.stack([rng.uniform(2, 12, 4), rng.normal(size=4), rng.normal(size=4)], -1)
    light = rng.normal(size=(4, 9, 3))
    np.testing.assert_allclose(camera_from_code(code_of_camera(cam, 8.4, convention), 8.4,
                                                convention), cam, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(light_from_code(code_of_light(light, convention=convention),
                                               convention=convention), light, atol=1e-5)


def test_deca_convention_is_decas_projection(rng):
    """DECA projects s (X + t): jaxface's camera (s, t) with s X + t gives the same points."""
    from jaxface.geometry.camera import weak_perspective

    raw = np.stack([rng.uniform(2, 12, 3), rng.normal(size=3), rng.normal(size=3)], -1)
    points = rng.normal(size=(3, 5, 3))
    want = raw[:, None, :1] * (points[..., :2] + raw[:, None, 1:])
    got = weak_perspective(jnp.asarray(points), camera_from_code(jnp.asarray(raw), 8.4, "deca"))
    # float32 s X + s t against float64 s (X + t): rounding is relative to the two terms, not
    # to their sum, which can cancel (seed 2949494282: 0.0496 from terms of ~10).
    bound = 1e-5 * (np.abs(raw[:, None, :1] * points[..., :2])
                    + np.abs(raw[:, None, :1] * raw[:, None, 1:]))
    assert np.all(np.abs(np.asarray(got)[..., :2] - want) <= bound)
    np.testing.assert_array_equal(np.asarray(light_from_code(jnp.ones((1, 9, 3)),
                                                             convention="deca")), 1.0)
    with pytest.raises(ValueError, match="code_convention"):
        camera_from_code(jnp.asarray(raw), 8.4, "emoca")


@pytest.mark.parametrize("mode,extra", [("exp", 0), ("exp_jaw", 3), ("exp_global", 3),
                                        ("exp_global_jaw", 6)])
def test_expression_code_replaces_what_emoca_replaces(rng, mode, extra):
    from jaxface.models.params import with_expression_code

    p = {k: rng.normal(size=(2, n)).astype(np.float32)
         for k, n in (("shape", 4), ("exp", 5), ("pose", 6))}
    code = rng.normal(size=(2, 5 + extra)).astype(np.float32)
    out = with_expression_code(p, jnp.asarray(code), mode)
    np.testing.assert_array_equal(np.asarray(out["exp"]), code[:, :5])
    np.testing.assert_array_equal(out["shape"], p["shape"])
    want_pose = {"exp": p["pose"],
                 "exp_jaw": np.concatenate([p["pose"][:, :3], code[:, 5:]], 1),
                 "exp_global": np.concatenate([code[:, 5:], p["pose"][:, 3:]], 1),
                 "exp_global_jaw": code[:, 5:]}[mode]
    np.testing.assert_array_equal(np.asarray(out["pose"]), want_pose)
    with pytest.raises(ValueError, match="needs"):
        with_expression_code(p, jnp.asarray(code[:, :4]), mode)
