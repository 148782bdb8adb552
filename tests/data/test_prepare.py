import io
import json

import numpy as np
import pytest
from array_record.python.array_record_data_source import ArrayRecordDataSource
from PIL import Image

from jaxface.data.landmarks import NoFaceError
from jaxface.data.prepare import (
    CONTEXT_SCALE,
    ImageError,
    crop_face,
    prepare,
    prepared_batches,
    read_rgb,
)
from jaxface.data.records import decode_example, read_info, shard_paths

dlib = pytest.importorskip("dlib", reason="needs the `face` extra (dlib-bin)")
skimage_data = pytest.importorskip("skimage.data", reason="needs the `face` extra")


@pytest.fixture(scope="module")
def detector():
    from jaxface.data.landmarks import DlibLandmarks

    return DlibLandmarks()


@pytest.fixture(scope="module")
def photos():
    from matplotlib import cbook

    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg",
                                                         asfileobj=False)).convert("RGB"))
    return {"astronaut": skimage_data.astronaut(), "hopper": hopper}


def test_dlib_landmarks_on_real_faces(detector, photos):
    for name, image in photos.items():
        face = detector(image)
        left, top, right, bottom = face.box
        lmk = face.landmarks
        assert lmk.shape == (68, 2), name
        margin = 0.25 * (right - left)  # the jaw may leave dlib's tight box a little
        assert np.all((lmk[:, 0] > left - margin) & (lmk[:, 0] < right + margin)), name
        assert np.all((lmk[:, 1] > top - margin) & (lmk[:, 1] < bottom + margin)), name
        # iBUG order: outer eye corners 36 (image left) and 45, chin 8 lowest, nose tip 30
        # between the eyes.
        assert lmk[36, 0] < lmk[39, 0] < lmk[42, 0] < lmk[45, 0], name
        assert lmk[8, 1] == lmk[:17, 1].max() and lmk[36, 0] < lmk[30, 0] < lmk[45, 0], name
    # The astronaut's mission patch is a weaker second detection: the best face is hers.
    assert detector(photos["astronaut"]).box[1] < 200


def test_crop_keeps_landmarks_on_their_pixels(photos, detector):
    image = photos["hopper"]
    lmk = detector(image).landmarks
    crop, lmk_crop = crop_face(image, lmk, 224)
    assert crop.shape == (224, 224, 3)
    assert np.all((lmk_crop > 0) & (lmk_crop < 224))
    # DECA's test crop: 1.25 x 1.1 x the landmarks' mean extent spans the crop.
    extent = np.sum(lmk_crop.max(0) - lmk_crop.min(0)) / 2
    assert extent == pytest.approx(224 / 1.375, rel=1e-4)
    # A pixel sampled in the crop comes from where the crop's frame maps it in the photo.
    j, i = map(int, lmk_crop[30])
    lo, hi = lmk.min(0), lmk.max(0)
    side = 1.375 * np.sum(hi - lo) / 2
    src = (lo + hi) / 2 - side / 2 + (np.array([j, i]) + 0.5) * side / 224
    np.testing.assert_allclose(crop[i, j], image[int(src[1]), int(src[0])], atol=40)
    # A training example's wider crop: 2 x the extent, room for DECA's 1.4-1.8 x crops.
    wide, lmk_wide = crop_face(image, lmk, 256, CONTEXT_SCALE)
    assert np.sum(lmk_wide.max(0) - lmk_wide.min(0)) / 2 == pytest.approx(128, rel=1e-4)


def _write_inputs(folder, photos):
    a, h = photos["astronaut"], photos["hopper"]
    (folder / "eileen").mkdir(parents=True)
    (folder / "grace").mkdir()
    Image.fromarray(a).save(folder / "eileen" / "color.png")
    Image.fromarray(a).convert("L").save(folder / "eileen" / "gray.png")
    rgba = np.concatenate([a, np.full(a.shape[:2] + (1,), 200, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(folder / "eileen" / "rgba.png")
    deep = Image.new("I;16", a.shape[1::-1])
    deep.frombytes((a[..., 0].astype("<u2") * 257).tobytes(), "raw", "I;16")
    deep.save(folder / "eileen" / "deep.png")
    big = Image.fromarray(h).resize((h.shape[1] * 5, h.shape[0] * 5))
    big.save(folder / "grace" / "huge.jpg", quality=85)
    Image.fromarray(h).save(folder / "grace" / "hopper.jpg")
    buf = io.BytesIO()
    Image.fromarray(h).save(buf, "JPEG")
    (folder / "grace" / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (folder / "grace" / "corrupt.png").write_bytes(b"\x89PNG not really an image")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(folder / "blank.png")
    (folder / "grace" / "empty.jpg").write_bytes(b"")
    Image.open(folder / "grace" / "hopper.jpg").resize((25, 25)).save(folder / "grace" / "tiny.png")


def test_prepare_reports_bad_inputs_and_keeps_the_rest(tmp_path, detector, photos):
    _write_inputs(tmp_path / "in", photos)
    report = prepare(tmp_path / "in", tmp_path / "out", detector, progress=False)
    ok = {p.split("/")[-1] for p in report["ok"]}
    failed = {p.split("/")[-1]: why for p, why in report["failed"].items()}
    assert ok == {"color.png", "gray.png", "rgba.png", "deep.png", "huge.jpg", "hopper.jpg"}
    assert set(failed) == {"truncated.jpg", "corrupt.png", "blank.png", "empty.jpg", "tiny.png"}
    assert "unreadable" in failed["truncated.jpg"] and "unreadable" in failed["corrupt.png"]
    assert failed["blank.png"] == "no face found"
    assert failed["empty.jpg"] == "empty file (0 bytes)"
    assert failed["tiny.png"].startswith("no face found: the image is only 25x25 px")
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    source = ArrayRecordDataSource(shard_paths(tmp_path / "out", "train"))
    examples = [decode_example(source[i]) for i in range(len(source))]
    assert len(examples) == 6
    for ex in examples:
        assert ex["image"].shape == (256, 256, 3) and ex["image"].dtype == np.uint8
        assert ex["mask"].shape == (256, 256, 1) and 0.1 < ex["mask"].mean() < 0.9
        assert np.all((ex["landmarks"] > 0) & (ex["landmarks"] < 256))
    assert sorted({int(e["identity"]) for e in examples}) == [0, 1]
    # Every usable image is kept, identity by identity (eileen 4, grace 2).
    assert read_info(tmp_path / "out")["splits"]["train"]["group_sizes"] == [4, 2]
    assert not list((tmp_path / "out").glob("*.partial"))


def test_min_images_and_errors(tmp_path, detector, photos):
    _write_inputs(tmp_path / "in", photos)
    report = prepare(tmp_path / "in", tmp_path / "out", detector, min_images=3,
                     progress=False)
    assert len(report["ok"]) == 4  # all of eileen's 4 usable images; grace has only 2
    assert read_info(tmp_path / "out")["splits"]["train"]["group_sizes"] == [4]
    assert any("fewer than 3" in why for why in report["failed"].values())
    with pytest.raises(ImageError, match="unreadable"):
        read_rgb(tmp_path / "in" / "grace" / "corrupt.png")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        prepare(tmp_path / "missing", tmp_path / "out2", detector, progress=False)


def test_prepared_batches_are_full_padded_and_skip_failures():
    """Items 0..6, two refused (unreadable, no face): batches of 2 usable items, the last
    padded by repeating its final example, each failure recorded with its reason."""
    def prepare_item(i):
        if i == 2:
            raise ImageError("unreadable image")
        if i == 5:
            raise NoFaceError("no face found")
        return {"image": np.full((4, 4, 3), i, np.uint8), "landmarks": np.full((68, 2), i),
                "mask": np.ones((4, 4, 1))}

    failed = {}
    batches = list(prepared_batches(range(7), prepare_item, 2, failed))
    assert [items for items, _, _ in batches] == [[0, 1], [3, 4], [6]]
    assert failed == {"2": "unreadable image", "5": "no face found"}
    _, examples, batch = batches[-1]
    assert len(examples) == 1 and batch["image"].shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(batch["landmarks"][1], np.full((68, 2), 6.0))
    np.testing.assert_allclose(batch["image"][0], 6 / 255.0)
