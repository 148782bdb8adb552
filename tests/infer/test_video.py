"""``jaxface reconstruct`` on videos and frame folders: the IoU tracker, Savitzky-Golay
smoothing against a float64 least-squares reference, and the whole command on a short clip
panned across scikit-image's astronaut (decoded and written through imageio-ffmpeg)."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxface.cli import main
from jaxface.infer.video import Tracker, box_iou, smooth_over_time

FRAMES, FPS, SIZE = 6, 10.0, 64


def _random_box(rng):
    (x0, x1), (y0, y1) = np.sort(rng.uniform(0, 10, (2, 2)), 1)
    return np.array([x0, y0, x1, y1])


def test_box_iou_against_counted_areas(rng):
    grid = np.stack(np.meshgrid(*(np.linspace(0, 10, 801),) * 2), -1)

    def inside(box):           # the box's cells of a fine grid: areas by counting
        return ((grid[..., 0] >= box[0]) & (grid[..., 0] < box[2])
                & (grid[..., 1] >= box[1]) & (grid[..., 1] < box[3]))

    for _ in range(20):
        a, b = _random_box(rng), _random_box(rng)
        ia, ib = inside(a), inside(b)
        union = np.sum(ia | ib)
        want = np.sum(ia & ib) / union if union else 0.0
        assert box_iou(a, b) == pytest.approx(want, abs=0.02)
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


def test_the_tracker_keeps_each_face_its_track():
    tracker = Tracker("all", max_gap=2)
    left, right = np.array([0, 0, 10, 10.0]), np.array([50, 0, 60, 10.0])
    assert tracker.assign(0, [left, right]) == [(0, 0), (1, 1)]
    # The faces move a little and come in the other order: each keeps its track.
    assert tracker.assign(1, [right + 2, left + 1]) == [(0, 1), (1, 0)]
    assert tracker.assign(2, [left + 2]) == [(0, 0)]                   # the right face left
    assert tracker.assign(3, [left + 3, right + 2]) == [(0, 0), (1, 1)]  # and came back
    assert tracker.assign(7, [right]) == [(2, 0)]        # gone longer than max_gap: new track


def test_the_largest_face_track_follows_its_face_and_reacquires():
    tracker = Tracker("largest")
    small, big = np.array([0, 0, 10, 10.0]), np.array([50, 0, 80, 30.0])
    assert tracker.assign(0, [small, big]) == [(0, 1)]
    # A larger face appears elsewhere: the track stays with its own face.
    huge = np.array([100, 0, 200, 100.0])
    assert tracker.assign(1, [huge, big + 1]) == [(0, 1)]
    assert tracker.assign(2, []) == []
    assert tracker.assign(3, [small, huge]) == [(0, 1)]   # lost: the largest face again
    with pytest.raises(ValueError, match="track must be"):
        Tracker("biggest")


def _local_quadratic(values, window):
    """Interior samples: the least-squares quadratic through the window, at its centre."""
    half = window // 2
    out = values.copy()
    x = np.arange(-half, half + 1)
    for t in range(half, len(values) - half):
        for d in range(values.shape[1]):
            out[t, d] = np.polyval(np.polyfit(x, values[t - half:t + half + 1, d], 2), 0)
    return out


def test_smoothing_is_a_local_least_squares_quadratic_within_runs(rng):
    frames = np.concatenate([np.arange(0, 15), np.arange(20, 29)])   # two runs
    values = rng.normal(size=(len(frames), 3))
    got = smooth_over_time(values.astype(np.float32), frames, 5)
    assert got.dtype == np.float32
    for run in (slice(0, 15), slice(15, None)):
        want = _local_quadratic(values[run], 5)
        np.testing.assert_allclose(got[run][2:-2], want[2:-2], atol=1e-5)
    # Quadratic motion passes unchanged, ends included; a jump between runs is kept.
    t = frames.astype(np.float64)
    motion = np.stack([0.3 + 0.1 * t - 0.004 * t ** 2, np.where(t < 17, 0.0, 5.0)], 1)
    np.testing.assert_allclose(smooth_over_time(motion, frames, 7), motion, atol=1e-9)
    # A run shorter than the window gets the longest odd window it holds; two frames: as is.
    short = rng.normal(size=(2, 1))
    np.testing.assert_array_equal(smooth_over_time(short, np.arange(2), 5), short)
    np.testing.assert_array_equal(smooth_over_time(values, frames, 0), values)   # off
    with pytest.raises(ValueError, match="odd"):
        smooth_over_time(values, frames, 4)


@pytest.fixture(scope="module")
def clip(sample_photos, tmp_path_factory):
    """Frames of a camera panning over the astronaut: the first FRAMES as an .mp4, and
    FRAMES + 2 as a frame folder whose third frame is blank (no face)."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the video extra")
    photo = np.asarray(Image.open(sample_photos / "astronaut.png").convert("RGB"))
    frames = [np.ascontiguousarray(photo[20 + 4 * k:20 + 4 * k + 300, 60 + 6 * k:60 + 6 * k + 350])
              for k in range(FRAMES + 2)]
    root = tmp_path_factory.mktemp("clip")
    writer = imageio_ffmpeg.write_frames(str(root / "pan.mp4"), (350, 300), fps=FPS,
                                         codec="libx264", macro_block_size=1,
                                         output_params=["-crf", "10"])
    writer.send(None)
    for f in frames[:FRAMES]:
        writer.send(f)
    writer.close()
    folder = root / "pan_frames"
    folder.mkdir()
    for k, f in enumerate(frames):
        Image.fromarray(np.zeros_like(f) + 128 if k == 2 else f).save(
            folder / f"frame_{k + 1}.png")      # frame_10 would sort after frame_2: natural
    (root / "broken.mp4").write_bytes(b"not a video at all")
    return root, frames


def test_a_video_is_tracked_smoothed_and_drawn(tiny_model, clip, sample_photos, tmp_path,
                                               capsys):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    import imageio_ffmpeg

    root, frames = clip
    out = tmp_path / "out"
    assert main(["reconstruct", "--model", str(tiny_model), str(root / "pan.mp4"),
                 str(root / "broken.mp4"), str(sample_photos / "astronaut.png"), "--out",
                 str(out), "--size", str(SIZE), "--batch-size", "4", "--smooth", "3",
                 "--html"]) == 0
    printed = capsys.readouterr()
    assert "pan_overlay.mp4" in printed.out and "broken.mp4" in printed.err
    # One gallery for the photo and the video: the photo's turntable, the video's clip (a
    # path relative to the page), the unreadable video among the skipped inputs.
    page = (out / "index.html").read_text()
    assert '<video src="pan/pan_overlay.mp4"' in page and "astronaut" in page
    assert f"track 0: frames 0-{FRAMES - 1}" in page
    assert "broken.mp4" in page.split("Skipped")[1]
    assert "1 face(s) reconstructed, 1 video(s), 1 input(s) skipped" in page
    report = json.loads((out / "pan" / "report.json").read_text())
    assert report["frames"] == FRAMES and report["fps"] == pytest.approx(FPS)
    assert report["tracks"] == {"0": {"frames": FRAMES, "first": 0, "last": FRAMES - 1}}
    with np.load(out / "pan" / "pan_track0_params.npz") as p:
        np.testing.assert_array_equal(p["frame"], np.arange(FRAMES))
        np.testing.assert_allclose(p["time_s"], np.arange(FRAMES) / FPS)
        for k in ("exp", "pose", "cam"):      # smoothed from the network's own
            flat = p[f"raw_{k}"].reshape(FRAMES, -1)
            np.testing.assert_allclose(p[k].reshape(FRAMES, -1),
                                       smooth_over_time(flat, p["frame"], 3), atol=1e-6)
        assert p["shape"].shape[0] == FRAMES and "raw_shape" not in p.files
        # The crop follows the face as the camera pans (the face moves by (-6, -4) px per
        # frame).
        moves = np.diff(p["crop_photo"][:, :2], axis=0)
        np.testing.assert_allclose(moves, np.tile([-6.0, -4.0], (FRAMES - 1, 1)), atol=2.5)
        # The written camera projects the mesh's landmarks where they were written: P maps
        # the crop's ndc frame onto the frame's pixels (checked at the crop's centre).
        P, crop = p["camera_photo_P"], p["crop_photo"]
        s = p["cam"][:, 0]
        centre = np.einsum("tij,tj->ti", P, np.stack(
            [-p["cam"][:, 1] / s, -p["cam"][:, 2] / s, np.zeros(FRAMES), np.ones(FRAMES)], 1))
        np.testing.assert_allclose(centre[:, :2], crop[:, :2], atol=1e-3)
        assert p["landmarks2d_photo"].shape == (FRAMES, 68, 2)
    reader = imageio_ffmpeg.read_frames(str(out / "pan" / "pan_overlay.mp4"))
    meta = next(reader)
    drawn = [np.frombuffer(f, np.uint8).reshape(300, 350, 3) for f in reader]
    assert meta["size"] == (350, 300) and len(drawn) == FRAMES
    for k in range(FRAMES):         # the face is drawn over, the corners are the frame's
        left, top, side = crop[k, 0] - crop[k, 2] / 2, crop[k, 1] - crop[k, 2] / 2, crop[k, 2]
        rows = slice(int(top + 0.3 * side), int(top + 0.7 * side))
        cols = slice(int(left + 0.3 * side), int(left + 0.7 * side))
        diff = np.abs(drawn[k].astype(float) - frames[k])
        assert diff[rows, cols].mean() > 20
        assert diff[:30, :30].mean() < 6 and diff[-30:, -30:].mean() < 6


def test_a_frame_folder_with_a_faceless_frame(tiny_model, clip, tmp_path, capsys):
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    root, _ = clip
    out = tmp_path / "out"
    assert main(["reconstruct", "--model", str(tiny_model), str(root / "pan_frames"),
                 "--frames", "--fps", "5", "--out", str(out), "--size", str(SIZE),
                 "--batch-size", "4", "--smooth", "5"]) == 0
    report = json.loads((out / "pan_frames" / "report.json").read_text())
    assert report["frames"] == FRAMES + 2 and report["frames_without_face"] == 1
    assert report["fps"] == 5.0
    with np.load(out / "pan_frames" / "pan_frames_track0_params.npz") as p:
        np.testing.assert_array_equal(p["frame"], [0, 1, 3, 4, 5, 6, 7])
        # Runs of 2 and 5 frames: the first too short to smooth, the second smoothed alone.
        np.testing.assert_array_equal(p["exp"][:2], p["raw_exp"][:2])
        np.testing.assert_allclose(p["exp"][2:], smooth_over_time(p["raw_exp"][2:],
                                                                  np.arange(5), 5), atol=1e-6)
        assert not np.allclose(p["exp"][2:], p["raw_exp"][2:])
    assert (out / "pan_frames" / "pan_frames_overlay.mp4").stat().st_size > 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["reconstruct", "--model", str(tiny_model), str(root / "pan_frames"), "--frames",
              "--out", str(out), "--smooth", "4"])
    assert "odd number >= 3, got 4" in capsys.readouterr().err


def test_without_ffmpeg_the_error_says_what_to_install(monkeypatch):
    from jaxface.infer.video import VideoError, require_ffmpeg

    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    with pytest.raises(VideoError, match="pip install imageio-ffmpeg"):
        require_ffmpeg()


def test_every_face_its_own_track(tiny_model, sample_photos, tmp_path):
    """--track all on frames showing two people: two tracks, each on its own person in every
    frame; batch 1 (each frame's two faces take two batches)."""
    pytest.importorskip("dlib", reason="the dlib landmark backend is in the face extra")
    pytest.importorskip("imageio_ffmpeg", reason="the video extra")
    from tests.infer.test_reconstruct import two_faces

    both = two_faces(sample_photos)
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(3):
        Image.fromarray(np.roll(both, 3 * k, axis=1)).save(frames / f"{k:03d}.png")
    out = tmp_path / "out"
    assert main(["reconstruct", "--model", str(tiny_model), str(frames), "--frames",
                 "--track", "all", "--out", str(out), "--size", str(SIZE),
                 "--batch-size", "1"]) == 0
    report = json.loads((out / "frames" / "report.json").read_text())
    assert set(report["tracks"]) == {"0", "1"}
    middle = both.shape[1] / 2
    sides = []
    for t in ("0", "1"):
        with np.load(out / "frames" / f"frames_track{t}_params.npz") as p:
            np.testing.assert_array_equal(p["frame"], [0, 1, 2])
            x = p["crop_photo"][:, 0]
            assert np.all(x < middle) or np.all(x > middle)     # one person throughout
            sides.append(x[0] < middle)
    assert sides[0] != sides[1]
