import jax.numpy as jnp
import numpy as np
import pytest
from array_record.python.array_record_data_source import ArrayRecordDataSource

from jaxface import flame
from jaxface.data.records import decode_example, read_info, shard_paths
from jaxface.data.synthetic import SynthSettings, generate
from jaxface.geometry import weak_perspective
from jaxface.render import clip_from_ndc, project_landmarks, rasterize

SETTINGS = SynthSettings(image_size=64, uv_size=64, occluder_prob=0.5)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    info = generate(out, identities=3, per_identity=3, seed=7, settings=SETTINGS, batch=4,
                    shards=2, progress=False)
    source = ArrayRecordDataSource(shard_paths(out, "train"))
    return out, info, [decode_example(source[i]) for i in range(len(source))]


def test_layout_identities_and_determinism(dataset, tmp_path):
    out, info, examples = dataset
    assert info["splits"]["train"] == {"examples": 9, "shards": 2, "group_sizes": [3, 3, 3]}
    assert read_info(out)["per_identity"] == 3
    for e in examples:   # framed by the landmarks: centred, 1 / context_scale of the image
        lo, hi = e["landmarks"].min(0), e["landmarks"].max(0)
        np.testing.assert_allclose((lo + hi) / 2, 32.0, atol=1e-3)
        assert np.sum(hi - lo) / 2 == pytest.approx(64 / SETTINGS.context_scale, rel=1e-4)
    assert [int(e["identity"]) for e in examples] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for i in range(0, 9, 3):  # beta shared within an identity, different across
        assert all(np.array_equal(examples[i]["shape"], examples[i + k]["shape"]) for k in (1, 2))
    assert not np.array_equal(examples[0]["shape"], examples[3]["shape"])
    assert not np.array_equal(examples[0]["pose"], examples[1]["pose"])
    again = generate(tmp_path, identities=1, per_identity=3, seed=7, settings=SETTINGS,
                     batch=2, progress=False)
    assert again["splits"]["train"]["examples"] == 3
    source = ArrayRecordDataSource(shard_paths(tmp_path, "train"))
    for i in range(3):  # a different batch size and shard layout: the same examples
        np.testing.assert_array_equal(decode_example(source[i])["image"], examples[i]["image"])
    assert not list(tmp_path.glob("*.partial"))


def test_stored_ground_truth_reproduces_landmarks_and_vertices(dataset):
    _, _, examples = dataset
    model = flame.synthetic_flame(0, n_shape=SETTINGS.n_shape,
                                  n_expression=SETTINGS.n_expression)
    stack = {k: jnp.asarray(np.stack([e[k] for e in examples]))
             for k in ("shape", "expression", "pose", "cam", "vertices", "landmarks")}
    out = flame.forward(model, stack["shape"], stack["expression"], stack["pose"])
    np.testing.assert_allclose(np.asarray(out.vertices), np.asarray(stack["vertices"]),
                               atol=1e-5)
    lmk = project_landmarks(out.landmarks3d, stack["cam"], (64, 64))
    np.testing.assert_allclose(np.asarray(lmk), np.asarray(stack["landmarks"]), atol=1e-3)


def test_mask_is_rendered_face_without_occluders(dataset):
    _, _, examples = dataset
    model = flame.synthetic_flame(0, n_shape=SETTINGS.n_shape,
                                  n_expression=SETTINGS.n_expression)
    verts = jnp.asarray(np.stack([e["vertices"] for e in examples]))
    cam = jnp.asarray(np.stack([e["cam"] for e in examples]))
    rast, _ = rasterize(clip_from_ndc(weak_perspective(verts, cam)), model.faces, (64, 64))
    covered = np.asarray(rast[..., 3] > 0)
    mask = np.stack([e["mask"][..., 0] for e in examples]).astype(bool)
    occluder = np.stack([e["occluder_mask"][..., 0] for e in examples]).astype(bool)
    assert np.all(~(mask & occluder))                    # occluders are never face
    assert np.all(mask <= covered)                       # the mask lies on the rendered head
    assert all(m.sum() > 0.1 * 64 * 64 for m in mask)    # and covers a real face area
    occluded = [i for i, e in enumerate(examples) if e["occluder_mask"].any()]
    assert occluded, "the test's settings draw occluders for half the images"
    images = np.stack([e["image"] for e in examples])
    for i in occluded:  # occluder pixels are one flat colour painted over the render
        colours = images[i][occluder[i]]
        assert np.ptp(colours.astype(int), axis=0).max() <= 1
