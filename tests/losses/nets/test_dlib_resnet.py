import numpy as np
import pytest

from jaxface.assets import AssetError
from jaxface.losses.nets.dlib_format import DlibReader, read_layers


def _encode_int(value: int) -> bytes:
    """dlib's integer encoding, written here from its description."""
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def test_reader_decodes_dlib_scalars_strings_and_tensors(rng):
    values = [0, 1, -1, 255, 256, -70000, 2**40 + 5]
    mantissa, exponent = int(rng.integers(-2**20, 2**20)), int(rng.integers(-30, 10))
    tensor = rng.normal(size=(2, 3, 1, 4)).astype("<f4")
    blob = b"".join(_encode_int(v) for v in values)
    blob += _encode_int(mantissa) + _encode_int(exponent)
    blob += _encode_int(7) + b"affine_" + b"1"
    blob += b"".join(_encode_int(v) for v in (2, 2, 3, 1, 4)) + tensor.tobytes()
    r = DlibReader(blob)
    assert [r.int() for _ in values] == values
    assert r.float() == mantissa * 2.0**exponent
    assert r.string() == "affine_" and r.bool() is True
    np.testing.assert_array_equal(r.tensor(), tensor)
    assert r.pos == len(blob)
    with pytest.raises(AssetError, match="truncated"):
        DlibReader(_encode_int(300)[:2]).int()


def test_wrong_and_missing_files(tmp_path):
    bad = tmp_path / "not_a_net.dat"
    bad.write_bytes(_encode_int(1) + _encode_int(5) + b"hello")
    with pytest.raises(AssetError, match="not a dlib metric-learning network"):
        read_layers(bad)
    with pytest.raises(AssetError, match="not found"):
        read_layers(tmp_path / "missing.dat")


# The port against dlib itself: needs the `face` extra (dlib-bin, face-recognition-models,
# scikit-image), installed in CI.
dlib = pytest.importorskip("dlib", reason="needs the `face` extra (dlib-bin)")
skimage_data = pytest.importorskip("skimage.data", reason="needs the `face` extra")


@pytest.fixture(scope="module")
def face_models(tmp_path_factory):
    import jax.numpy as jnp
    from matplotlib import cbook
    from PIL import Image

    from jaxface.assets import packaged_model_path
    from jaxface.losses.nets.dlib_resnet import FILE_NAME, load_dlib_face_net

    cache = tmp_path_factory.mktemp("dlib_cache")
    net = load_dlib_face_net(cache_dir=cache)
    assert (cache / "dlib_face_recognition_resnet_model_v1.npz").is_file()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(packaged_model_path(
        "shape_predictor_5_face_landmarks.dat")))
    reference = dlib.face_recognition_model_v1(str(packaged_model_path(FILE_NAME)))

    def chip(image):
        rects, scores, _ = detector.run(image, 1)
        best = rects[int(np.argmax(scores))]
        return dlib.get_face_chip(image, predictor(image, best), size=150)

    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg",
                                                         asfileobj=False)).convert("RGB"))
    chips = {"astronaut": chip(skimage_data.astronaut()), "hopper": chip(hopper)}
    chips["mirror"] = np.ascontiguousarray(chips["astronaut"][:, ::-1])

    def ours(c):
        return np.asarray(net(jnp.asarray(c[None], jnp.float32)))[0]

    def theirs(c):
        return np.asarray(reference.compute_face_descriptor(c))

    return chips, ours, theirs, load_dlib_face_net, cache


def test_descriptors_match_dlib(face_models):
    chips, ours, theirs, *_ = face_models
    for name in ("astronaut", "hopper"):
        got, want = ours(chips[name]), theirs(chips[name])
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert got @ want / np.linalg.norm(got) / np.linalg.norm(want) > 0.9999


def test_descriptor_distances_separate_people(face_models):
    chips, ours, *_ = face_models
    astronaut, hopper, mirror = (ours(chips[k]) for k in ("astronaut", "hopper", "mirror"))
    assert np.linalg.norm(astronaut - hopper) > 0.6      # dlib's same-person threshold
    assert np.linalg.norm(astronaut - mirror) < 0.6


def test_cached_npz_gives_the_same_network(face_models):
    import jax.numpy as jnp

    chips, ours, _, load, cache = face_models
    again = load(cache / "dlib_face_recognition_resnet_model_v1.npz")
    np.testing.assert_array_equal(
        np.asarray(again(jnp.asarray(chips["hopper"][None], jnp.float32)))[0],
        ours(chips["hopper"]))
    with pytest.raises(ValueError, match=r"\(B, 150, 150, 3\) aligned chips"):
        again(jnp.zeros((1, 112, 112, 3)))
