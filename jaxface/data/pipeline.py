"""Identity-grouped batches from a jaxface dataset folder, with grain.

A dataset folder (``jaxface synth`` / ``jaxface prepare``, or a prepared tfds builder of
:mod:`jaxface.data.tfds_builders`) stores its images identity by
identity, ``group_size`` consecutive records each. A batch is ``identities_per_batch`` whole
groups (K images of each identity, as the shape and detail consistency losses need), drawn in
an order shuffled per epoch from a seed. The pipeline is a grain ``MapDataset``, so batch
``step`` is a pure function of (seed, step): resuming at a step gives exactly the batches an
uninterrupted run would have seen. Worker processes (``workers > 0``) read and decode ahead.
"""

from __future__ import annotations

import os

import grain
import numpy as np

from jaxface.data.records import decode_example, is_tfds_folder, read_info, shard_paths

# Keys a batch carries to training, and their dtypes (images and masks become float32 in
# [0, 1]); ground-truth keys of synthetic data are kept when present.
FLOAT_KEYS = ("image", "mask")


class GroupedRecords:
    """Random access to whole identity groups of a dataset split."""

    def __init__(self, directory: str | os.PathLike, split: str = "train"):
        info = read_info(directory)
        self.group_size = int(info.get("per_identity", 1))
        if is_tfds_folder(directory):
            from jaxface.data.tfds_builders import tfds_source

            self.source, self.decode = tfds_source(directory, split), dict
        else:
            from array_record.python.array_record_data_source import ArrayRecordDataSource

            self.source = ArrayRecordDataSource(shard_paths(directory, split))
            self.decode = decode_example
        if len(self.source) % self.group_size:
            raise ValueError(f"{directory}: {len(self.source)} records are not whole groups "
                             f"of {self.group_size}")
        self.groups = len(self.source) // self.group_size

    def __len__(self) -> int:
        return self.groups

    def __getitem__(self, group: int) -> list[dict[str, np.ndarray]]:
        start = int(group) * self.group_size
        return [self.decode(self.source[start + k]) for k in range(self.group_size)]


def collate(groups: list[list[dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Stacks groups into one batch dict, group after group (K consecutive images per
    identity); images and masks become float32 in [0, 1]."""
    examples = [ex for group in groups for ex in group]
    batch = {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}
    for k in FLOAT_KEYS:
        batch[k] = batch[k].astype(np.float32) / (255.0 if k == "image" else 1.0)
    return batch


def grouped_batches(directory: str | os.PathLike, identities_per_batch: int, seed: int,
                    split: str = "train", shard_index: int = 0, shard_count: int = 1
                    ) -> grain.MapDataset:
    """An infinite, per-epoch-shuffled ``MapDataset`` of batches; ``ds[step]`` is batch
    ``step``. ``shard_index`` / ``shard_count`` give each host a disjoint share of the
    groups (multi-host training)."""
    records = GroupedRecords(directory, split)
    if identities_per_batch > len(records) // shard_count:
        raise ValueError(f"{identities_per_batch} identities per batch, but this host's share "
                         f"of {directory} has {len(records) // shard_count}")
    groups = grain.MapDataset.range(len(records))[shard_index::shard_count]
    ds = groups.shuffle(seed=seed).repeat(None).map(lambda g: records[g])
    return ds.batch(identities_per_batch, drop_remainder=True, batch_fn=collate)


def eval_batches(directory: str | os.PathLike, identities_per_batch: int,
                 split: str = "val") -> grain.MapDataset | None:
    """One pass over a split in order, ``identities_per_batch`` groups per batch (a last
    partial batch is dropped: static shapes); None when the folder has no such split."""
    if split not in read_info(directory)["splits"]:
        return None
    records = GroupedRecords(directory, split)
    groups = grain.MapDataset.range(len(records)).map(lambda g: records[g])
    return groups.batch(min(identities_per_batch, len(records)), drop_remainder=True,
                        batch_fn=collate)


def batch_iterator(dataset: grain.MapDataset, start_step: int = 0, workers: int = 0):
    """Iterates batches from ``start_step`` on (deterministic resume), with ``workers``
    prefetching processes when > 0."""
    it = dataset[start_step:].to_iter_dataset()
    if workers > 0:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags (defaults here)
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return iter(it)
