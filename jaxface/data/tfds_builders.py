"""TensorFlow-Datasets builders for jaxface's data, without TensorFlow.

``tensorflow-datasets`` prepares and reads datasets without TensorFlow when the builder
writes ``array_record`` files and every feature is a ``tfds.features.Tensor`` (``Image``
would import TensorFlow to encode). Examples keep their generation order
(``disable_shuffling``): an identity's K images are consecutive records, which the
identity-grouped batches of :mod:`jaxface.data.pipeline` rely on. A prepared builder folder
(``<data_dir>/<name>/<version>``) is a valid ``data.dir`` for training.

* ``jaxface_synthetic``: the synthetic dataset (:mod:`jaxface.data.synthetic`), with ground
  truth; ``train`` and ``val`` splits.
* ``vggface2``, ``bupt_balancedface``: manual download. Point ``manual_dir`` at the
  extracted images, one folder per identity; each photo goes through ``jaxface prepare``'s
  preprocessing (dlib detection, DECA crop with room for the training crops, 68 landmarks,
  landmark-hull mask); every usable photo is kept, identities with fewer than
  ``min_images`` are skipped, and the images per identity are recorded in the metadata.
* ``now``: the NoW benchmark's photos prepared the same way, with their image paths
  (manual download; the scans stay in the NoW folder for ``jaxface evaluate-now``).

    from jaxface.data.tfds_builders import prepare_builder, PhotoConfig, Vggface2
    path = prepare_builder(Vggface2, "~/tfds", PhotoConfig(name="min3", min_images=3),
                           manual_dir="~/data/vggface2/train")
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from jaxface.data.now_layout import SPLITS as SPLIT_FILES
from jaxface.data.synthetic import SynthSettings, default_face_model, synthetic_examples


def _tensor(shape, dtype):
    return tfds.features.Tensor(shape=tuple(shape), dtype=dtype)


def _base_features(size: int) -> dict:
    return {"image": _tensor((size, size, 3), np.uint8),
            "landmarks": _tensor((68, 2), np.float32),
            "mask": _tensor((size, size, 1), np.uint8),
            "identity": _tensor((), np.int32)}


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """The synthetic dataset's size (``jaxface synth``'s options)."""

    identities: int = 64
    per_identity: int = 4
    val_identities: int = 4
    image_size: int = 224
    seed: int = 0


class JaxfaceSynthetic(tfds.core.GeneratorBasedBuilder):
    """Faces rendered from the embedded head, with ground-truth parameters and vertices."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [SyntheticConfig(name="default")]

    def _settings(self) -> SynthSettings:
        return SynthSettings(image_size=self.builder_config.image_size)

    def _info(self) -> tfds.core.DatasetInfo:
        s, c = self._settings(), self.builder_config
        model, _ = default_face_model(s)
        features = _base_features(s.image_size) | {
            "occluder_mask": _tensor((s.image_size, s.image_size, 1), np.uint8),
            "index": _tensor((), np.int32),
            "shape": _tensor((s.n_shape,), np.float32),
            "expression": _tensor((s.n_expression,), np.float32),
            "pose": _tensor((15,), np.float32),
            "albedo": _tensor((s.n_albedo,), np.float32),
            "light": _tensor((9, 3), np.float32),
            "cam": _tensor((3,), np.float32),
            "vertices": _tensor((model.n_vertices, 3), np.float32)}
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__.split("\n")[0], disable_shuffling=True,
            features=tfds.features.FeaturesDict(features),
            metadata=tfds.core.MetadataDict(per_identity=c.per_identity,
                                            image_size=s.image_size, seed=c.seed))

    def _split_generators(self, dl_manager):
        c = self.builder_config
        splits = {"train": self._generate_examples(0, c.identities)}
        if c.val_identities:
            splits["val"] = self._generate_examples(c.identities,
                                                    c.identities + c.val_identities)
        return splits

    def _generate_examples(self, first: int, last: int):
        from jaxface.render import face_topology

        s, c = self._settings(), self.builder_config
        model, albedo = default_face_model(s)
        topology = face_topology(model.faces, model.uvs, model.uv_faces, s.uv_size,
                                 backend="jax")
        for n, example in enumerate(synthetic_examples(model, albedo, topology, c.seed, first,
                                                       last, c.per_identity, s)):
            yield f"{first}-{n:09d}", example


@dataclasses.dataclass(eq=False)
class PhotoConfig(tfds.core.BuilderConfig):
    """Real-photo preprocessing: crop size, the fewest usable images an identity needs,
    landmark backend."""

    min_images: int = 3
    image_size: int = 256
    landmarks: str = "dlib"


class _PhotoFolders(tfds.core.GeneratorBasedBuilder):
    """One folder per identity under ``manual_dir``, prepared as ``jaxface prepare`` does."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [PhotoConfig(name="default")]

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        return tfds.core.DatasetInfo(
            builder=self, description=self.__doc__.split("\n")[0], disable_shuffling=True,
            features=tfds.features.FeaturesDict(_base_features(c.image_size)),
            metadata=tfds.core.MetadataDict(min_images=c.min_images,
                                            image_size=c.image_size))

    def _split_generators(self, dl_manager):
        root = pathlib.Path(dl_manager.manual_dir)
        if not root.is_dir() or not any(p.is_dir() for p in root.iterdir()):
            raise FileNotFoundError(f"{root}: expected the extracted images, one folder per "
                                    f"identity. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        return {"train": self._generate_examples(root)}

    def _generate_examples(self, root: pathlib.Path):
        from jaxface.data.landmarks import landmark_backend
        from jaxface.data.prepare import identity_groups

        c = self.builder_config
        detector = landmark_backend(c.landmarks)
        report: dict = {"ok": [], "failed": {}}
        sizes = self.info.metadata.setdefault("group_sizes", {"train": []})["train"]
        for label, (_, examples) in enumerate(identity_groups(root, detector, c.image_size,
                                                                 c.min_images, report)):
            sizes.append(len(examples))   # written with the metadata after generation
            for k, example in enumerate(examples):
                example["identity"] = np.int32(label)
                yield f"{label:09d}-{k:03d}", {key: example[key] for key in
                                               ("image", "landmarks", "mask", "identity")}


class Vggface2(_PhotoFolders):
    """VGGFace2 (Cao et al. 2018) faces, prepared for training (manual download)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download VGGFace2 (https://github.com/ox-vgg/vgg_face2; licence: research use) and "
        "pass manual_dir = the extracted train/ folder (n000002/, n000003/, ...).")


class BuptBalancedface(_PhotoFolders):
    """BUPT-Balancedface (Wang et al. 2020) faces, prepared for training (manual
    download)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Request BUPT-Balancedface (http://www.whdeng.cn/RFW/Trainingdataste.html) and pass "
        "manual_dir = a folder of identity folders (merge its race sub-folders).")


@dataclasses.dataclass(eq=False)
class NowConfig(tfds.core.BuilderConfig):
    """NoW's photos prepared for a model (crop size, landmark backend)."""

    image_size: int = 224
    landmarks: str = "dlib"


class Now(tfds.core.GeneratorBasedBuilder):
    """The NoW benchmark's photos (Sanyal et al. 2019), prepared as model inputs (manual
    download). Splits ``val`` and ``test`` (its image lists); each example keeps its
    ``image_path`` (``<subject>/<challenge>/<image>.jpg``, the key of NoW's predictions) and
    the subject as ``identity``. The scans stay in the NoW folder, where ``jaxface
    evaluate-now`` reads them (one per subject, as the official evaluation does)."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [NowConfig(name="default")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download NoW (https://now.is.tue.mpg.de; licence: research use) and pass manual_dir "
        "= NoW_Dataset (or its final_release_version/ folder).")

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        features = _base_features(c.image_size) | {"image_path": _tensor((), np.str_)}
        return tfds.core.DatasetInfo(
            builder=self, description=self.__doc__.split("\n")[0], disable_shuffling=True,
            features=tfds.features.FeaturesDict(features),
            metadata=tfds.core.MetadataDict(per_identity=1, image_size=c.image_size))

    def _split_generators(self, dl_manager):
        from jaxface.data.now_layout import NowLayoutError, image_list, now_root

        try:
            root = now_root(dl_manager.manual_dir)
        except NowLayoutError as e:
            raise FileNotFoundError(f"{e}. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from e
        return {split: self._generate_examples(root, image_list(root, split))
                for split in ("val", "test") if (root / SPLIT_FILES[split]).is_file()}

    def _generate_examples(self, root: pathlib.Path, images: list[str]):
        from jaxface.data.landmarks import NoFaceError, landmark_backend
        from jaxface.data.prepare import ImageError, prepare_image

        c = self.builder_config
        detector = landmark_backend(c.landmarks)
        subjects = {name: i for i, name in enumerate(sorted({im.split("/")[0]
                                                             for im in images}))}
        for n, image in enumerate(images):
            try:
                ex = prepare_image(root / "iphone_pictures" / image, detector, c.image_size)
            except (ImageError, NoFaceError, OSError) as e:
                logging.warning("now: skipped %s: %s", image, e)
                continue
            yield f"{n:09d}", {"image": ex["image"], "landmarks": ex["landmarks"],
                               "mask": ex["mask"], "image_path": image,
                               "identity": np.int32(subjects[image.split("/")[0]])}


def prepare_builder(builder_cls, data_dir: str | os.PathLike, config=None,
                    manual_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Prepares a builder as array_record (no TensorFlow) -> its folder (a ``data.dir``)."""
    data_dir = pathlib.Path(data_dir).expanduser()
    kwargs = {"config": config} if config is not None else {}
    builder = builder_cls(data_dir=str(data_dir), file_format="array_record", **kwargs)
    download_config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else str(pathlib.Path(manual_dir).expanduser()))
    builder.download_and_prepare(download_config=download_config)
    return pathlib.Path(builder.data_dir)


def is_tfds_folder(directory: str | os.PathLike) -> bool:
    return (pathlib.Path(directory) / "features.json").is_file()


def tfds_info(directory: str | os.PathLike) -> dict:
    """A prepared builder folder's info in jaxface's ``dataset_info.json`` shape."""
    builder = tfds.builder_from_directory(str(directory))
    meta = builder.info.metadata or {}
    sizes = meta.get("group_sizes", {})
    splits = {}
    for name, split in builder.info.splits.items():
        splits[name] = {"examples": split.num_examples}
        if name in sizes:
            splits[name]["group_sizes"] = [int(n) for n in sizes[name]]
    return {"name": builder.info.name, "per_identity": int(meta.get("per_identity", 1)),
            "image_size": int(meta.get("image_size", 0)), "splits": splits}


def tfds_source(directory: str | os.PathLike, split: str):
    """Random access to a prepared builder's split (decoded NumPy examples)."""
    return tfds.builder_from_directory(str(directory)).as_data_source(split=split)
