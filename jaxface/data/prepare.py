"""Real photos -> jaxface examples: decode, detect, 68 landmarks, DECA's landmark crop, mask.

``jaxface prepare --images DIR --out DIR``: every image under DIR (sub-folders = identities;
images directly in DIR are each their own identity) is read defensively (grayscale, RGBA,
16-bit and palette images converted to 8-bit RGB; huge images shrunk for detection; corrupt
or truncated files reported), its best face found, and a square crop around the landmarks'
box stored with its 68 landmarks and the landmark-hull mask (or a segmentation mask of the
same name from ``--masks``). Every usable image of an identity is kept (training draws K of
them per epoch); identities with fewer than ``--min-images`` usable images are skipped. The
stored crop is wide (``CONTEXT_SCALE`` x the landmarks' mean extent) so that DECA's random
training crops (1.4-1.8 x) fit inside it; inference (``reconstruct``) crops DECA's test
framing (1.25 x 1.1 x) directly. Failures go to the report with their reason; the other files
go on. Shards and the report are written atomically.
"""

from __future__ import annotations

import json
import os
import pathlib
import warnings

import numpy as np
from PIL import Image

from jaxface.data.landmarks import NoFaceError
from jaxface.data.records import shard_name, write_info, write_shard
from jaxface.geometry.framing import TEST_CROP_SCALE
from jaxface.geometry.masks import landmark_hull_mask

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
MAX_SIDE = 2048          # larger images are shrunk before detection
CONTEXT_SCALE = 2.0      # a training example's crop: room for DECA's 1.4-1.8 x crops
MAX_PIXELS = 20000 ** 2  # refuse decompression bombs beyond this


class ImageError(ValueError):
    """An image file that cannot be used (unreadable, truncated, unsupported)."""


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit RGB array of any common image file; :class:`ImageError` says why not."""
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageError(f"image too large ({im.width}x{im.height})")
                im.load()
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    arr = np.asarray(im, np.float64)
                    scale = 65535.0 if arr.max() > 255 else 255.0
                    im = Image.fromarray(np.clip(arr / scale * 255, 0, 255).astype(np.uint8))
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency"
                                                        in im.info):
                    rgba = im.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(white, rgba)
                return np.asarray(im.convert("RGB"))
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise ImageError(f"unreadable image ({type(e).__name__}: {e})") from e


def crop_box(landmarks_68x2: np.ndarray, scale: float = TEST_CROP_SCALE
             ) -> tuple[float, float, float]:
    """DECA's square crop: centre of the landmarks' box and side ``scale`` x its mean extent
    ((width + height) / 2; DECA's test framing by default)."""
    lo, hi = landmarks_68x2.min(0), landmarks_68x2.max(0)
    centre = (lo + hi) / 2
    return float(centre[0]), float(centre[1]), float(scale * np.sum(hi - lo) / 2)


def crop_square(rgb: np.ndarray, crop, size: int) -> np.ndarray:
    """The size x size picture (bilinear) of the square ``crop`` (centre x, centre y, side;
    pixels) of ``rgb``."""
    cx, cy, side = (float(v) for v in crop)
    pixel = side / size
    # PIL's affine maps output (x, y) to input (a x + b y + c, d x + e y + f), pixel corners.
    return np.asarray(Image.fromarray(rgb).transform(
        (size, size), Image.Transform.AFFINE, (pixel, 0, cx - side / 2, 0, pixel, cy - side / 2),
        resample=Image.Resampling.BILINEAR))


def crop_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = 224,
              scale: float = TEST_CROP_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """The size x size crop (bilinear) and the landmarks in its pixel frame."""
    cx, cy, side = crop_box(landmarks, scale)
    corner = np.array([cx - side / 2, cy - side / 2])
    return (crop_square(rgb, (cx, cy, side), size),
            ((landmarks - corner) / (side / size)).astype(np.float32))


def _shrunk(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    side = max(rgb.shape[:2])
    if side <= MAX_SIDE:
        return rgb, 1.0
    f = MAX_SIDE / side
    small = Image.fromarray(rgb).resize((round(rgb.shape[1] * f), round(rgb.shape[0] * f)),
                                        Image.Resampling.BILINEAR)
    return np.asarray(small), f


def prepare_image(path: pathlib.Path, detector, size: int = 224,
                  mask_path: pathlib.Path | None = None, crop_scale: float = TEST_CROP_SCALE
                  ) -> dict[str, np.ndarray]:
    """One photo -> an example (without identity) of its best face; raises ImageError /
    NoFaceError. ``mask_path``: a segmentation mask image for it (white = face), else the
    landmark hull. ``crop_scale``: the crop's side over the landmarks' mean extent (DECA's
    test framing by default; :data:`CONTEXT_SCALE` for training examples). Also returns where
    it came from in the photo: ``face_box`` (left, top, right, bottom) of the detector and
    ``crop`` (centre x, centre y, side), photo pixels."""
    return prepare_faces(path, detector, size, None, mask_path, crop_scale)[0]


def prepare_faces(path: pathlib.Path, detector, size: int = 224, min_score: float | None = None,
                  mask_path: pathlib.Path | None = None, crop_scale: float = TEST_CROP_SCALE
                  ) -> list[dict[str, np.ndarray]]:
    """:func:`prepare_image` for every face of a photo the detector scores at least
    ``min_score`` (None: the best only), best first; each example also has ``face_index``
    (its rank)."""
    mask_full = None
    if mask_path is not None:
        mask_full = (read_rgb(mask_path)[..., 0] > 127).astype(np.uint8) * 255
    return face_examples(read_rgb(path), detector, size, min_score, crop_scale, mask_full)


def face_examples(rgb: np.ndarray, detector, size: int = 224, min_score: float | None = None,
                  crop_scale: float = TEST_CROP_SCALE, mask_full: np.ndarray | None = None
                  ) -> list[dict[str, np.ndarray]]:
    """:func:`prepare_faces` of a decoded photo (or a video frame)."""
    small, f = _shrunk(rgb)
    return [_face_example(rgb, face, f, size, crop_scale, mask_full) | {"face_index": k}
            for k, face in enumerate(detector.faces(small, min_score))]


def _face_example(rgb: np.ndarray, face, f: float, size: int, crop_scale: float,
                  mask_full: np.ndarray | None) -> dict[str, np.ndarray]:
    """One detected face (found in the photo shrunk by ``f``) -> its example."""
    landmarks = face.landmarks / f
    image, lmk = crop_face(rgb, landmarks, size, crop_scale)
    if mask_full is not None:
        crop, _ = crop_face(np.repeat(mask_full[..., None], 3, -1), landmarks, size,
                            crop_scale)
        mask = (crop[..., :1] > 127).astype(np.uint8)
    else:
        mask = np.asarray(landmark_hull_mask(lmk[None], np.zeros((1, size, size, 1))))[0]
        mask = (mask > 0.5).astype(np.uint8)
    box = np.asarray(face.box, np.float32) / f
    return {"image": image, "landmarks": lmk, "mask": mask, "face_box": box,
            "crop": np.asarray(crop_box(landmarks, crop_scale), np.float32)}


def stack_examples(examples: list[dict], batch_size: int) -> dict[str, np.ndarray]:
    """Prepared examples -> a float32 network batch of exactly ``batch_size`` (the last
    example repeated as padding: one shape, one compilation): image in [0, 1], landmarks,
    mask."""
    rows = list(examples) + [examples[-1]] * (batch_size - len(examples))
    return {"image": np.stack([r["image"] for r in rows]).astype(np.float32) / 255.0,
            "landmarks": np.stack([r["landmarks"] for r in rows]).astype(np.float32),
            "mask": np.stack([r["mask"] for r in rows]).astype(np.float32)}


def prepared_batches(items, prepare, batch_size: int, failed: dict):
    """Prepares ``items`` one at a time with ``prepare(item) -> example`` (or a list of
    examples: several faces of one photo, each its own row, the item repeated) and yields
    ``(items, examples, batch)`` for every ``batch_size`` usable ones (the last batch padded,
    see :func:`stack_examples`): inference on photos in fixed-size batches. An item whose
    image is unreadable or shows no face is recorded as ``failed[str(item)] = reason``."""
    pending: list[tuple] = []

    def emit():
        examples = [example for _, example in pending]
        return [item for item, _ in pending], examples, stack_examples(examples, batch_size)

    for item in items:
        try:
            prepared = prepare(item)
        except (ImageError, NoFaceError, OSError) as e:
            failed[str(item)] = str(e)
            continue
        for example in prepared if isinstance(prepared, list) else [prepared]:
            pending.append((item, example))
            if len(pending) == batch_size:
                yield emit()
                pending = []
    if pending:
        yield emit()


def find_images(root: pathlib.Path) -> list[tuple[pathlib.Path, str]]:
    """(path, identity name) of every image: sub-folder name, or the file's own stem."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            rel = path.relative_to(root)
            out.append((path, rel.parts[0] if len(rel.parts) > 1 else path.stem))
    return out


def identity_groups(root: pathlib.Path, detector, size: int = 256, min_images: int = 1,
                    report: dict | None = None, mask_dir: str | os.PathLike | None = None,
                    progress: bool = False, crop_scale: float = CONTEXT_SCALE):
    """Yields (identity name, prepared examples) per identity under ``root``: every usable
    image, cropped at ``crop_scale``; identities with fewer than ``min_images`` usable images
    are skipped. Failures and skips are recorded in ``report`` ({"ok": [...], "failed":
    {path: reason}})."""
    from tqdm import tqdm

    report = {"ok": [], "failed": {}} if report is None else report
    by_identity: dict[str, list[pathlib.Path]] = {}
    for path, name in find_images(root):
        by_identity.setdefault(name, []).append(path)
    bar = tqdm(total=sum(map(len, by_identity.values())), desc="prepare", unit="img",
               disable=not progress)
    for name, paths in by_identity.items():
        items = []
        for path in paths:
            bar.update(1)
            mask_path = None
            if mask_dir is not None:
                mask_path = (pathlib.Path(mask_dir) / path.relative_to(root)).with_suffix(
                    ".png")
            try:
                example = prepare_image(path, detector, size, mask_path, crop_scale)
            except (ImageError, NoFaceError, OSError) as e:
                report["failed"][str(path)] = str(e)
                continue
            del example["face_box"], example["crop"]   # not part of the dataset format
            items.append((path, example))
        if len(items) < min_images:
            for path, _ in items:
                report["failed"][str(path)] = (f"identity {name!r} has {len(items)} usable "
                                               f"images, fewer than {min_images}")
            continue
        report["ok"] += [str(path) for path, _ in items]
        yield name, [example for _, example in items]
    bar.close()


def prepare(images: str | os.PathLike, out: str | os.PathLike, detector, size: int = 256,
            mask_dir: str | os.PathLike | None = None, min_images: int = 1,
            progress: bool = True) -> dict:
    """Prepares every image under ``images`` into a dataset folder ``out``; returns the
    report ({"ok": [...], "failed": {path: reason}}); see :func:`identity_groups`."""
    root, out = pathlib.Path(images), pathlib.Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"--images {root} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    report = {"ok": [], "failed": {}}
    examples, identities, sizes = [], {}, []
    for name, group in identity_groups(root, detector, size, min_images, report, mask_dir,
                                       progress):
        identities[name] = len(identities)  # dense labels over the identities kept
        sizes.append(len(group))
        for example in group:
            example["identity"] = np.int32(identities[name])
            examples.append(example)
    write_shard(out / shard_name("train", 0, 1), examples)
    write_info(out, {"name": "jaxface_photos", "image_size": size, "min_images": min_images,
                     "crop_scale": CONTEXT_SCALE, "identities": len(identities),
                     "identity_names": list(identities),
                     "splits": {"train": {"examples": len(examples), "shards": 1,
                                          "group_sizes": sizes}}})
    partial = out / "report.json.partial"
    partial.write_text(json.dumps(report, indent=2))
    os.replace(partial, out / "report.json")
    return report
