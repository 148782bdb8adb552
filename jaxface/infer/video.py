"""``jaxface reconstruct`` on a video file or a folder of frames: face tracks over time.

A video (a file with a :data:`VIDEO_SUFFIXES` suffix, decoded by ffmpeg through
``imageio-ffmpeg``) or, with ``--frames``, a folder of frames (image files sorted by name,
numbers in natural order) is one sequence. Pass 1 decodes it frame by frame, detects the faces,
keeps face tracks (``track="largest"``: one track, the largest face, followed from frame to
frame by box overlap and re-acquired when lost; ``"all"``: a track per face, a greedy IoU
tracker) and runs the model on fixed-size batches of crops. With ``smooth`` = W the expression,
pose and camera of each track are smoothed over time (a Savitzky-Golay filter, scipy's: a
least-squares quadratic over W frames, which keeps motion up to constant acceleration) within
each run of consecutive frames where the track has a face. Pass 2 decodes the frames again and
draws every track's shaded reconstruction, from the (smoothed) parameters, over them. Writes,
in ``<out>/<name>/``::

    <name>_overlay.mp4            the frames with every tracked face drawn over them (H.264)
    <name>_track<k>_params.npz    track k, per frame where it has a face (T of them):
                                  ``frame`` (T,) and ``time_s``; ``shape``, ``exp``, ``pose``,
                                  ``tex``, ``cam``, ``light``, ``detail_code`` as ``reconstruct``
                                  writes them (smoothed when asked; the network's own as
                                  ``raw_exp``, ``raw_pose``, ``raw_cam``); ``crop_photo`` (T, 3)
                                  the crop (centre x, centre y, side) in the frame's pixels,
                                  ``camera_photo_P`` (T, 3, 4) the frame's orthographic camera
                                  (``reconstruct``'s convention) and ``landmarks2d_photo`` (T,
                                  68, 2) the reconstruction's landmarks in the frame
    report.json                   frames, fps, frames without a face, per track its frames

Frames that cannot be decoded end the sequence with the reason in the report; a frame without
a face is counted and drawn as it is.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import time
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.landmarks import NoFaceError
from jaxface.data.prepare import (
    IMAGE_SUFFIXES,
    ImageError,
    crop_square,
    face_examples,
    read_rgb,
    stack_examples,
)
from jaxface.geometry.camera import photo_camera
from jaxface.infer.reconstruct import PARAM_KEYS, crop_to_photo, overlay_on_photo
from jaxface.reconstruction.assets import jit_with_assets
from jaxface.reconstruction.model_folder import LoadedModel
from jaxface.reconstruction.predict import (
    detail_normal_map,
    outputs_of_decoded,
    predict,
    render_geometry,
)

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
SMOOTHED_KEYS = ("exp", "pose", "cam")  # what changes smoothly over a shot
TRACK_MODES = ("largest", "all")
INSTALL_HINT = "pip install imageio-ffmpeg (or the video extra: pip install -e '.[video]')"


class VideoError(ValueError):
    """A sequence that cannot be read or written (no ffmpeg, an unknown codec, no frames)."""


@dataclasses.dataclass(frozen=True)
class Frames:
    """A re-readable sequence: ``read()`` yields its frames (RGB uint8) from the start."""

    read: Callable[[], Iterator[np.ndarray]]
    fps: float
    count: int | None      # None when the container does not say


def require_ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise VideoError(f"reading and writing video needs ffmpeg: {INSTALL_HINT}") from e
    return imageio_ffmpeg


def open_video(path: pathlib.Path) -> Frames:
    """A video file's frames, decoded by ffmpeg (:class:`VideoError` naming the file when it
    cannot: no imageio-ffmpeg, an unreadable file or a codec ffmpeg lacks)."""
    ffmpeg = require_ffmpeg()

    def reader():
        try:
            gen = ffmpeg.read_frames(str(path))
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as e:
            raise VideoError(f"{path}: ffmpeg cannot read it ({_first_line(e)})") from e
        return gen, meta

    gen, meta = reader()
    gen.close()
    w, h = meta["size"]
    fps = float(meta.get("fps") or 25.0)
    duration = meta.get("duration")
    count = round(duration * fps) if duration else None

    def read():
        frames, _ = reader()
        try:
            for raw in frames:
                yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError) as e:
            raise VideoError(f"{path}: ffmpeg stopped decoding ({_first_line(e)})") from e
        finally:
            frames.close()

    return Frames(read, fps, count)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _natural_key(path: pathlib.Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def open_frame_folder(folder: pathlib.Path, fps: float) -> Frames:
    """A folder's image files as a sequence, sorted by name in natural order (frame_2 before
    frame_10); :class:`VideoError` when it has none."""
    if not fps > 0:
        raise VideoError(f"{folder}: the frame rate must be positive, got {fps}")
    files = sorted((p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise VideoError(f"{folder}: no image files to use as frames")

    def read():
        for path in files:
            try:
                yield read_rgb(path)
            except ImageError as e:
                raise VideoError(f"{path}: {e}") from e

    return Frames(read, fps, len(files))


def is_video(path: pathlib.Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


# -- tracking ------------------------------------------------------------------------------

def box_iou(a, b) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _area(box) -> float:
    return float((box[2] - box[0]) * (box[3] - box[1]))


@dataclasses.dataclass
class Tracker:
    """Face tracks by box overlap. ``mode`` "largest": one track (id 0) that follows its face
    while some box overlaps its last one by ``min_iou`` and otherwise takes the largest face;
    "all": every face is a track, matched greedily (highest IoU first) to the tracks seen in
    the last ``max_gap`` frames, the unmatched ones starting new tracks."""

    mode: str = "largest"
    min_iou: float = 0.3
    max_gap: int = 10
    last: dict = dataclasses.field(default_factory=dict)   # track -> (frame, box)
    next_id: int = 0

    def __post_init__(self):
        if self.mode not in TRACK_MODES:
            raise ValueError(f"track must be one of {TRACK_MODES}, got {self.mode!r}")

    def assign(self, frame: int, boxes: list) -> list[tuple[int, int]]:
        """The (track, box index) pairs of a frame's face boxes (left, top, right, bottom)."""
        live = [(t, box) for t, (seen, box) in self.last.items()
                if frame - seen <= self.max_gap]
        pairs = sorted(((box_iou(tb, b), t, i) for t, tb in live for i, b in enumerate(boxes)),
                       reverse=True)
        matched, used_tracks, used_boxes = [], set(), set()
        for iou, t, i in pairs:
            if iou < self.min_iou or t in used_tracks or i in used_boxes:
                continue
            matched.append((t, i))
            used_tracks.add(t)
            used_boxes.add(i)
        if self.mode == "largest":
            if not matched and boxes:
                matched = [(0, max(range(len(boxes)), key=lambda i: _area(boxes[i])))]
            matched = matched[:1]
        else:
            for i in range(len(boxes)):
                if i not in used_boxes:
                    matched.append((self.next_id, i))
                    self.next_id += 1
        self.next_id = max([self.next_id] + [t + 1 for t, _ in matched])
        for t, i in matched:
            self.last[t] = (frame, np.asarray(boxes[i], np.float64))
        return sorted(matched)


# -- smoothing -----------------------------------------------------------------------------

def check_smoothing_window(window: int) -> int:
    """The one rule for ``--smooth``: 0 (off) or an odd number of frames >= 3."""
    if window != 0 and (window < 3 or window % 2 == 0):
        raise ValueError(f"the smoothing window must be 0 (off) or an odd number >= 3, "
                         f"got {window}")
    return window


def smooth_over_time(values_TxD: np.ndarray, frames_T: np.ndarray, window: int,
                     order: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing of per-frame values along time (axis 0), separately in each
    run of consecutive ``frames``; a run shorter than ``window`` gets the longest odd window
    it holds (none below ``order`` + 2 frames). ``window``: odd, >= 3 (0: unchanged)."""
    from scipy.signal import savgol_filter

    if check_smoothing_window(window) == 0:
        return np.array(values_TxD, copy=True)
    values = np.asarray(values_TxD, np.float64)
    out = values.copy()
    breaks = np.flatnonzero(np.diff(np.asarray(frames_T)) != 1) + 1
    for run in np.split(np.arange(len(values)), breaks):
        w = min(window, len(run) - (1 - len(run) % 2))
        if w >= order + 2:
            out[run] = savgol_filter(values[run], w, order, axis=0, mode="interp")
    return out.astype(np.asarray(values_TxD).dtype)


# -- the two passes ------------------------------------------------------------------------

def make_predict_step(model: LoadedModel):
    """-> jit ``step(params, batch_stats, batch) -> outputs`` (:func:`predict`)."""
    cfg = model.cfg

    def step(params, stats, batch, assets):
        return predict(model.graphdef, params, stats, batch, assets, cfg)

    return jit_with_assets(step, model.assets)


def make_overlay_step(model: LoadedModel, size: int):
    """-> jit ``step(params, batch_stats, p, image) -> {"overlay", "alpha", "landmarks2d"}``:
    decoded parameters ``p`` (a batch) drawn shaded, with their details, over crops
    ``image``."""
    cfg = model.cfg

    def step(params, stats, p, image, assets):
        out = outputs_of_decoded(model.graphdef, params, stats, p, assets, cfg, size)
        normals = detail_normal_map(out["vertices"], out["displacement"], assets,
                                    cfg.render.backend)
        drawn = render_geometry(out, image, assets, cfg, normals, size)
        return {"overlay": drawn.image, "alpha": drawn.alpha,
                "landmarks2d": out["landmarks2d"]}

    return jit_with_assets(step, model.assets)


def _batched(rows: list, batch_size: int, run) -> list:
    """``run(stacked rows)`` on ``rows`` in fixed-size batches (the last padded) -> one
    result per row, each a dict of arrays."""
    results = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        out = jax.device_get(run(chunk + [chunk[-1]] * (batch_size - len(chunk))))
        results += [{k: np.asarray(v[i]) for k, v in out.items()} for i in range(len(chunk))]
    return results


def track_and_predict(model: LoadedModel, frames: Frames, detector, size: int,
                      batch_size: int, tracker: Tracker, min_face_score: float,
                      progress) -> tuple[dict, dict]:
    """Pass 1 -> ({track: {"frame": [...], "crop": [...], PARAM_KEYS: [...]}}, counts
    {"frames", "no_face", "error", "size": the first frame's (height, width)})."""
    step = make_predict_step(model)
    tracks: dict[int, dict] = {}
    counts = {"frames": 0, "no_face": 0}
    pending: list[tuple[int, int, dict]] = []

    def flush(rows):
        batch = stack_examples([ex for _, _, ex in rows], batch_size)
        out = jax.device_get(step(model.params, model.batch_stats,
                                  {k: jnp.asarray(v) for k, v in batch.items()}))
        for row, (t, frame, ex) in enumerate(rows):
            track = tracks.setdefault(t, {"frame": [], "crop": []} | {k: [] for k in
                                                                     PARAM_KEYS})
            track["frame"].append(frame)
            track["crop"].append(ex["crop"])
            for k in PARAM_KEYS:
                track[k].append(np.asarray(out[k][row]))

    try:
        for frame, rgb in enumerate(frames.read()):
            counts["frames"] += 1
            counts.setdefault("size", rgb.shape[:2])
            progress.update(1)
            try:
                examples = face_examples(rgb, detector, size, min_face_score)
            except NoFaceError:
                counts["no_face"] += 1
                examples = []
            for t, i in tracker.assign(frame, [ex["face_box"] for ex in examples]):
                pending.append((t, frame, examples[i]))
            while len(pending) >= batch_size:     # a frame of many faces: several batches
                flush(pending[:batch_size])
                del pending[:batch_size]
    except VideoError as e:
        counts["error"] = str(e)
    if pending:
        flush(pending)
    return ({t: {k: np.stack(v) for k, v in track.items()} for t, track in tracks.items()},
            counts)


def draw_tracks(model: LoadedModel, frames: Frames, tracks: dict, size: int,
                batch_size: int, writer, progress) -> dict:
    """Pass 2: every frame with each track's face drawn (``writer.send(frame)``); returns
    {track: landmarks2d in the frame's pixels (T, 68, 2)}."""
    step = make_overlay_step(model, size)
    at_frame: dict[int, list[tuple[int, int]]] = {}
    for t, track in tracks.items():
        for row, frame in enumerate(track["frame"]):
            at_frame.setdefault(int(frame), []).append((t, row))
    landmarks = {t: np.zeros((len(track["frame"]), 68, 2), np.float32)
                 for t, track in tracks.items()}
    window: list[tuple[int, np.ndarray]] = []

    def run(rows):
        p = {k: jnp.asarray(np.stack([tracks[t][k][row] for t, row, _ in rows]))
             for k in PARAM_KEYS}
        image = jnp.asarray(np.stack([crop for _, _, crop in rows]), jnp.float32) / 255.0
        return step(model.params, model.batch_stats, p, image)

    def flush():
        rows = [(t, row, crop_square(rgb, tracks[t]["crop"][row], size))
                for frame, rgb in window for t, row in at_frame.get(frame, [])]
        drawn = iter(_batched(rows, batch_size, run)) if rows else iter(())
        for frame, rgb in window:
            for t, row in at_frame.get(frame, []):
                face = next(drawn)
                rgb = overlay_on_photo(rgb, face["overlay"], face["alpha"],
                                       tracks[t]["crop"][row])
                landmarks[t][row] = crop_to_photo(face["landmarks2d"],
                                                   tracks[t]["crop"][row], size)
            writer.send(_even(rgb))
            progress.update(1)
        window.clear()

    waiting = 0
    try:
        for frame, rgb in enumerate(frames.read()):
            window.append((frame, rgb))
            waiting += len(at_frame.get(frame, []))
            if waiting >= batch_size:
                flush()
                waiting = 0
    except VideoError:       # pass 1 met it too and put it in the report
        pass
    if window:
        flush()
    return landmarks


def _even_size(h: int, w: int) -> tuple[int, int]:
    """H.264's 4:2:0 needs even sides: an odd side gains one row / column."""
    return h + h % 2, w + w % 2


def _even(rgb: np.ndarray) -> np.ndarray:
    """A frame padded to :func:`_even_size`, the last row / column repeated."""
    h, w = rgb.shape[:2]
    eh, ew = _even_size(h, w)
    return np.ascontiguousarray(np.pad(rgb, ((0, eh - h), (0, ew - w), (0, 0)), mode="edge"))


def reconstruct_sequence(model: LoadedModel, frames: Frames, name: str,
                         out_dir: pathlib.Path, detector, batch_size: int = 8,
                         size: int = 224, track: str = "largest", smooth: int = 0,
                         min_face_score: float = 0.5, progress: bool = True) -> dict:
    """One sequence into ``out_dir`` (the module docstring) -> its report."""
    from tqdm import tqdm

    start = time.perf_counter()
    ffmpeg = require_ffmpeg()                     # before any work: the overlay video needs it
    check_smoothing_window(smooth)
    tracker = Tracker(track)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tqdm(total=frames.count, desc=f"{name}: track", unit="frame",
              disable=not progress) as bar:
        tracks, counts = track_and_predict(model, frames, detector, size, batch_size,
                                           tracker, min_face_score, bar)
    report = {"frames": counts["frames"], "fps": frames.fps, "frames_without_face":
              counts["no_face"], "tracks": {}, "smooth": smooth, "track": track}
    if "error" in counts:
        report["error"] = counts["error"]
    if counts["frames"] == 0:
        raise VideoError(report.get("error", f"{name}: no frames"))
    for t in tracks.values():
        if smooth:
            for k in SMOOTHED_KEYS:
                t[f"raw_{k}"] = t[k]
                t[k] = smooth_over_time(t[k].reshape(len(t[k]), -1), t["frame"],
                                        smooth).reshape(t[k].shape)
    video = out_dir / f"{name}_overlay.mp4"
    h, w = _even_size(*counts["size"])
    writer = ffmpeg.write_frames(str(video), (w, h), fps=frames.fps, codec="libx264",
                                 macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    try:
        with tqdm(total=counts["frames"], desc=f"{name}: draw", unit="frame",
                  disable=not progress) as bar:
            landmarks = draw_tracks(model, frames, tracks, size, batch_size, writer, bar)
    finally:
        writer.close()
    for k, t in tracks.items():
        cameras = np.stack([photo_camera(cam, crop)["P"]
                            for cam, crop in zip(t["cam"], t["crop"], strict=True)])
        arrays = {key: v for key, v in t.items() if key not in ("crop",)}
        np.savez(out_dir / f"{name}_track{k}_params.npz", **arrays,
                 time_s=t["frame"] / frames.fps, crop_photo=t["crop"],
                 camera_photo_P=cameras, landmarks2d_photo=landmarks[k])
        report["tracks"][str(k)] = {"frames": len(t["frame"]),
                                    "first": int(t["frame"][0]), "last": int(t["frame"][-1])}
    report["overlay_video"] = str(video)
    report["seconds"] = round(time.perf_counter() - start, 3)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def split_inputs(inputs, frames: bool) -> tuple[list[pathlib.Path], list[pathlib.Path]]:
    """``reconstruct``'s inputs -> (sequences: the video files and, with ``frames``, the
    folders; the rest: photos and folders of photos). A missing path is an error here,
    before anything loads."""
    sequences, rest = [], []
    for item in map(pathlib.Path, inputs):
        if not item.exists():
            raise FileNotFoundError(f"no such photo, video or folder: {item}")
        (sequences if is_video(item) or (frames and item.is_dir()) else rest).append(item)
    return sequences, rest


def reconstruct_videos(model: LoadedModel, sequences, out_dir: pathlib.Path, detector,
                       batch_size: int = 8, size: int = 224, track: str = "largest",
                       smooth: int = 0, fps: float = 25.0, min_face_score: float = 0.5,
                       progress: bool = True) -> dict:
    """:func:`reconstruct_sequence` for each of ``sequences`` (video files or frame folders,
    :func:`split_inputs`) into ``out_dir/<name>/`` -> {"ok": {sequence: its report},
    "failed": {sequence: reason}}; a sequence that cannot be read is reported and the others
    go on."""
    report: dict = {"ok": {}, "failed": {}}
    names: set[str] = set()
    for path in sequences:
        name, k = path.stem, 1
        while name in names:
            name, k = f"{path.stem}_{k}", k + 1
        names.add(name)
        try:
            frames = open_video(path) if path.is_file() else open_frame_folder(path, fps)
            report["ok"][str(path)] = reconstruct_sequence(
                model, frames, name, out_dir / name, detector, batch_size, size, track, smooth,
                min_face_score, progress)
        except VideoError as e:
            report["failed"][str(path)] = str(e)
    return report
