"""The example format on disk: one record per image, written to ``array_record`` shards.

An example is a dict of NumPy arrays (``image`` uint8 (H, W, 3), ``landmarks`` float32 (68, 2)
in pixels, ``mask`` uint8 (H, W, 1), ``identity`` int32, and for synthetic data the ground
truth). Records are the example's ``.npz`` bytes, so readers need NumPy only. Shards are
written under a temporary name and renamed when complete: a killed writer leaves no
half-written shard that looks finished.
"""

from __future__ import annotations

import io
import json
import os
import pathlib

import numpy as np

REQUIRED = ("image", "landmarks", "mask", "identity")


def encode_example(example: dict[str, np.ndarray]) -> bytes:
    missing = [k for k in REQUIRED if k not in example]
    if missing:
        raise ValueError(f"an example needs {REQUIRED}; missing {missing}")
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in example.items()})
    return buf.getvalue()


def decode_example(record: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(record)) as data:
        return {k: data[k] for k in data.files}


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}.array_record-{index:05d}-of-{count:05d}"


def write_shard(path: pathlib.Path, examples) -> int:
    """Writes encoded examples to ``path`` atomically; returns how many."""
    from array_record.python.array_record_module import ArrayRecordWriter

    partial = path.with_name(path.name + ".partial")
    writer = ArrayRecordWriter(str(partial), "group_size:1")
    n = 0
    try:
        for example in examples:
            writer.write(encode_example(example))
            n += 1
    finally:
        writer.close()
    os.replace(partial, path)
    return n


def write_info(directory: pathlib.Path, info: dict) -> None:
    partial = directory / "dataset_info.json.partial"
    partial.write_text(json.dumps(info, indent=2, sort_keys=True))
    os.replace(partial, directory / "dataset_info.json")


def is_tfds_folder(directory: str | os.PathLike) -> bool:
    """A prepared tensorflow-datasets builder folder (:mod:`jaxface.data.tfds_builders`)."""
    return (pathlib.Path(directory) / "features.json").is_file()


def read_info(directory: str | os.PathLike) -> dict:
    """The dataset's info (name, per_identity, image_size, splits), from a jaxface folder's
    ``dataset_info.json`` or a tfds builder folder's metadata."""
    if is_tfds_folder(directory):
        from jaxface.data.tfds_builders import tfds_info

        return tfds_info(directory)
    path = pathlib.Path(directory) / "dataset_info.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a jaxface dataset folder (write one "
                                "with `jaxface synth` or `jaxface prepare`)")
    return json.loads(path.read_text())


def group_sizes(info: dict, split: str) -> list[int]:
    """The number of images of each identity of a split, in record order (identities are
    consecutive runs of records): the split's ``group_sizes``, or for folders written
    before they were recorded, ``per_identity`` images each."""
    entry = info["splits"][split]
    if "group_sizes" in entry:
        return [int(n) for n in entry["group_sizes"]]
    k = int(info.get("per_identity", 1))
    if entry["examples"] % k:
        raise ValueError(f"{entry['examples']} {split} records are not whole groups of {k}")
    return [k] * (entry["examples"] // k)


def shard_paths(directory: str | os.PathLike, split: str) -> list[str]:
    info = read_info(directory)
    count = info["splits"][split]["shards"]
    paths = [pathlib.Path(directory) / shard_name(split, i, count) for i in range(count)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"dataset shards missing: {missing}")
    return [str(p) for p in paths]
