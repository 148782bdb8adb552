"""Identity-grouped batches from one or several dataset folders, with grain.

A dataset folder (``jaxface synth`` / ``jaxface prepare``, or a prepared tfds builder of
:mod:`jaxface.data.tfds_builders`) stores its images identity by identity, every usable image
of each identity as consecutive records (``group_sizes`` in its info). Training draws, as
DECA does, K images of an identity afresh each epoch (:func:`draw_images`: over
ceil(n / K) epochs every one of its n images is drawn once) and visits the identities with
at least K images in an order shuffled per epoch; a batch is ``identities_per_batch`` such
groups (K images of each, as the shape and detail consistency losses need). Several folders
(VGGFace2 + BUPT-Balancedface, as the paper) are mixed group by group with weights. The
pipeline is a grain ``MapDataset``: batch ``step`` is a pure function of (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would. Worker processes
(``workers > 0``) read and decode ahead.
"""

from __future__ import annotations

import os

import grain
import numpy as np

from jaxface.data.records import (
    decode_example,
    group_sizes,
    is_tfds_folder,
    read_info,
    shard_paths,
)

# Keys a batch carries to training, and their dtypes (images and masks become float32 in
# [0, 1]); ground-truth keys of synthetic data are kept when present.
FLOAT_KEYS = ("image", "mask")
STREAM_LENGTH = 2**62    # the infinite stream of identity groups, indexed lazily


class GroupedRecords:
    """Random access to the images of a dataset split, identity by identity."""

    def __init__(self, directory: str | os.PathLike, split: str = "train"):
        info = read_info(directory)
        if split not in info["splits"]:
            raise ValueError(f"{directory} has no {split!r} split (it has "
                             f"{sorted(info['splits'])})")
        self.sizes = np.asarray(group_sizes(info, split), np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        if is_tfds_folder(directory):
            from jaxface.data.tfds_builders import tfds_source

            self.source, self.decode = tfds_source(directory, split), dict
        else:
            from array_record.python.array_record_data_source import ArrayRecordDataSource

            self.source = ArrayRecordDataSource(shard_paths(directory, split))
            self.decode = decode_example
        if len(self.source) != int(self.sizes.sum()):
            raise ValueError(f"{directory}: {len(self.source)} records, but its identity "
                             f"groups add up to {int(self.sizes.sum())}")

    def __len__(self) -> int:
        return len(self.sizes)

    def load(self, identity: int, images) -> list[dict[str, np.ndarray]]:
        """The examples ``images`` (indices within the identity) of identity ``identity``."""
        start = int(self.offsets[identity])
        return [self.decode(self.source[start + int(k)]) for k in images]


def draw_images(seed: int, epoch: int, identity: int, n_images: int, k: int) -> np.ndarray:
    """The K distinct images (indices < n) identity ``identity`` contributes in ``epoch``:
    each cycle of m = ceil(n / K) epochs walks one random permutation of its images K at a
    time (the last slot topped up from the permutation's start), so every image is drawn
    once per cycle. A pure function of its arguments (deterministic resume)."""
    if n_images < k:
        raise ValueError(f"identity {identity} has {n_images} images, fewer than {k}")
    slots = -(-n_images // k)
    cycle, slot = divmod(epoch, slots)
    order = np.random.default_rng([seed, identity, cycle]).permutation(n_images)
    drawn = order[slot * k:(slot + 1) * k]
    return np.concatenate([drawn, order[:k - len(drawn)]])


class EpochGroups:
    """Element g of an infinite stream of (identity, K image indices): epoch g // E visits
    the E identities with at least K images (this host's share) in an order shuffled per
    epoch, each with its :func:`draw_images`."""

    def __init__(self, sizes: np.ndarray, k: int, seed: int, shard_index: int = 0,
                 shard_count: int = 1):
        self.sizes, self.k, self.seed = sizes, k, seed
        self.identities = np.flatnonzero(sizes >= k)[shard_index::shard_count]

    def __len__(self) -> int:
        return len(self.identities)

    def __getitem__(self, g: int) -> tuple[int, np.ndarray]:
        epoch, j = divmod(int(g), len(self.identities))
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.identities))
        identity = int(self.identities[order[j]])
        return identity, draw_images(self.seed, epoch, identity, int(self.sizes[identity]),
                                     self.k)


def collate(groups: list[list[dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Stacks groups into one batch dict, group after group (K consecutive images per
    identity); images and masks become float32 in [0, 1]. Keys all examples share are kept
    (mixed datasets: synthetic ground truth only when every group has it)."""
    examples = [ex for group in groups for ex in group]
    keys = [k for k in examples[0] if all(k in ex for ex in examples)]
    batch = {k: np.stack([ex[k] for ex in examples]) for k in keys}
    for k in FLOAT_KEYS:
        batch[k] = batch[k].astype(np.float32) / (255.0 if k == "image" else 1.0)
    return batch


def _split_dirs(directories) -> list[str]:
    """``data.dir``: one folder, or several separated by commas."""
    if isinstance(directories, (str, os.PathLike)):
        directories = str(directories).split(",")
    return [str(d).strip() for d in directories if str(d).strip()]


def grouped_batches(directories, identities_per_batch: int, images_per_identity: int,
                    seed: int, split: str = "train", shard_index: int = 0, shard_count: int = 1,
                    weights=None) -> grain.MapDataset:
    """An infinite ``MapDataset`` of batches of ``identities_per_batch`` x
    ``images_per_identity`` images; ``ds[step]`` is batch ``step``. ``directories``: one
    folder or several (comma-separated string or a list), mixed group by group with
    ``weights`` (default: in proportion to their identities). ``shard_index`` /
    ``shard_count`` give each host a disjoint share of the identities."""
    dirs = _split_dirs(directories)
    sources, counts = [], []
    for n, directory in enumerate(dirs):
        records = GroupedRecords(directory, split)
        groups = EpochGroups(records.sizes, images_per_identity, seed + 7919 * n, shard_index,
                             shard_count)
        if len(groups) < (identities_per_batch if len(dirs) == 1 else 1):
            raise ValueError(
                f"{identities_per_batch} identities per batch, but this host's share of "
                f"{directory} has {len(groups)} identities with >= {images_per_identity} "
                f"images")
        counts.append(len(groups))
        sources.append(grain.MapDataset.range(STREAM_LENGTH).map(
            lambda g, r=records, gr=groups: r.load(*gr[g])))
    if len(sources) == 1:
        ds = sources[0]
    else:
        if weights is not None and len(weights) not in (0, len(sources)):
            raise ValueError(f"data.mix_weights has {len(weights)} values for {len(sources)} "
                             "data folders")
        ds = grain.MapDataset.mix(sources, list(weights) if weights else counts)
    return ds.batch(identities_per_batch, drop_remainder=True, batch_fn=collate)


def eval_batches(directory: str | os.PathLike, identities_per_batch: int,
                 images_per_identity: int, split: str = "val") -> grain.MapDataset | None:
    """One pass over a split in order: the first ``images_per_identity`` images of each
    identity that has that many, ``identities_per_batch`` identities per batch (a last
    partial batch is dropped: static shapes); None when the folder has no such split."""
    directory = _split_dirs(directory)[0]
    if split not in read_info(directory)["splits"]:
        return None
    records = GroupedRecords(directory, split)
    identities = np.flatnonzero(records.sizes >= images_per_identity)
    if len(identities) == 0:
        return None
    groups = grain.MapDataset.range(len(identities)).map(
        lambda g: records.load(int(identities[g]), range(images_per_identity)))
    return groups.batch(min(identities_per_batch, len(identities)), drop_remainder=True,
                        batch_fn=collate)


# Batches read ahead by background threads. grain's default (16 threads, 500 *batches*)
# held ~5 GB of decoded batches on the synthetic config and took the CPU from the first
# step's compilation; a step needs one batch, a few cover the jitter of reading.
READ_AHEAD = grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)


def batch_iterator(dataset: grain.MapDataset, start_step: int = 0, workers: int = 0):
    """Iterates batches from ``start_step`` on (deterministic resume), read ahead by
    :data:`READ_AHEAD` threads, with ``workers`` prefetching processes when > 0."""
    it = dataset[start_step:].to_iter_dataset(READ_AHEAD)
    if workers > 0:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags (defaults here)
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(it)
