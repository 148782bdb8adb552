"""The tfds builders prepare (without TensorFlow) and read back tiny datasets made here, and
the training pipeline reads them as identity-grouped batches."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets", reason="the tfds extra")

from jaxface.data.pipeline import grouped_batches  # noqa: E402
from jaxface.data.records import read_info  # noqa: E402
from jaxface.data.synthetic import SynthSettings, default_face_model, synthetic_examples  # noqa: E402,E501
from jaxface.data.tfds_builders import (  # noqa: E402
    BuptBalancedface,
    JaxfaceSynthetic,
    PhotoConfig,
    SyntheticConfig,
    Vggface2,
    prepare_builder,
)


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory):
    config = SyntheticConfig(name="tiny", identities=2, per_identity=2, val_identities=1,
                             image_size=64, seed=3)
    return prepare_builder(JaxfaceSynthetic, tmp_path_factory.mktemp("tfds"), config)


def test_synthetic_builder_holds_the_generators_examples_in_order(synthetic_folder):
    from jaxface.render import face_topology

    info = read_info(synthetic_folder)
    assert info["name"] == "jaxface_synthetic" and info["per_identity"] == 2
    assert info["splits"] == {"train": {"examples": 4}, "val": {"examples": 2}}
    source = tfds.builder_from_directory(str(synthetic_folder)).as_data_source(split="train")
    settings = SynthSettings(image_size=64)
    model, albedo = default_face_model(settings)
    topology = face_topology(model.faces, model.uvs, model.uv_faces, settings.uv_size)
    expected = list(synthetic_examples(model, albedo, topology, 3, 0, 2, 2, settings))
    for i, ex in enumerate(expected):
        got = source[i]
        assert set(got) == set(ex)
        for k in ex:
            np.testing.assert_array_equal(got[k], ex[k], err_msg=k)


def test_training_batches_read_the_builder_folder(synthetic_folder):
    ds = grouped_batches(synthetic_folder, identities_per_batch=1, images_per_identity=2,
                         seed=0)
    batch = ds[0]
    assert batch["image"].shape == (2, 64, 64, 3) and batch["image"].dtype == np.float32
    assert batch["identity"][0] == batch["identity"][1]          # one whole identity group
    again = grouped_batches(synthetic_folder, 1, 2, seed=0)[5]
    np.testing.assert_array_equal(again["image"], ds[5]["image"])   # resume by step


def test_no_tensorflow_is_imported(synthetic_folder):
    code = ("import sys; from jaxface.data.pipeline import grouped_batches; "
            f"b = grouped_batches({str(synthetic_folder)!r}, 1, 2, 0)[0]; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("False")


@pytest.mark.parametrize("builder", [Vggface2, BuptBalancedface])
def test_photo_builders_prepare_identity_folders(builder, sample_photos, tmp_path):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    manual = tmp_path / "manual"
    for name, photos in (("n001", ["astronaut.png", "astronaut.png", "grace_hopper.jpg"]),
                         ("n002", ["grace_hopper.jpg"])):       # too few usable images
        (manual / name).mkdir(parents=True)
        for i, photo in enumerate(photos):
            shutil.copy(sample_photos / photo, manual / name / f"{i}{photo[-4:]}")
    (manual / "n002" / "broken.jpg").write_bytes(b"not a jpeg")
    folder = prepare_builder(builder, tmp_path / "tfds", PhotoConfig(name="min2", min_images=2),
                             manual_dir=manual)
    info = read_info(folder)
    # Every usable image of the identities with at least 2 kept, their counts recorded.
    assert info["splits"] == {"train": {"examples": 3, "group_sizes": [3]}}
    source = tfds.builder_from_directory(str(folder)).as_data_source(split="train")
    for i in range(3):
        ex = source[i]
        assert ex["image"].shape == (256, 256, 3) and ex["identity"] == 0
        assert ex["mask"].shape == (256, 256, 1) and ex["mask"].max() == 1
        assert np.all((ex["landmarks"] > 0) & (ex["landmarks"] < 256))
    batch = grouped_batches(folder, 1, 2, seed=0)[0]      # trains with K = 2 of the 3
    assert batch["image"].shape == (2, 256, 256, 3)


def test_photo_builder_without_manual_folder_says_what_to_download(tmp_path):
    with pytest.raises(Exception, match="Download VGGFace2"):
        prepare_builder(Vggface2, tmp_path / "tfds", manual_dir=tmp_path / "missing")


def test_now_builder_prepares_the_split_photos_with_their_paths(sample_photos, tmp_path):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    from jaxface.data.tfds_builders import Now

    root = tmp_path / "NoW_Dataset" / "final_release_version"
    images = ["FaMoS_1/multiview_neutral/IMG_0101.jpg", "FaMoS_2/selfie/IMG_0007.jpg",
              "FaMoS_2/selfie/IMG_0008.jpg"]                   # the last one is missing
    for image, photo in zip(images[:2], ["astronaut.png", "grace_hopper.jpg"], strict=True):
        (root / "iphone_pictures" / image).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_photos / photo, root / "iphone_pictures" / image)
    (root / "imagepathsvalidation.txt").write_text("\n".join(images) + "\n")
    folder = prepare_builder(Now, tmp_path / "tfds", manual_dir=root.parent)
    assert read_info(folder)["splits"] == {"val": {"examples": 2}}
    source = tfds.builder_from_directory(str(folder)).as_data_source(split="val")
    assert [source[i]["image_path"].decode() for i in range(2)] == images[:2]
    assert [int(source[i]["identity"]) for i in range(2)] == [0, 1]
    assert source[0]["image"].shape == (224, 224, 3)
