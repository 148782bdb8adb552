"""Input pipeline speed: identity-grouped batches from a synthetic dataset folder.

    python benchmarks/input_pipeline.py [--identities 64] [--per-identity 4] [--batch 8]

Writes a synthetic dataset (224 x 224) to a temporary folder, then reads batches of
``--batch`` images (batch / K identities x K) through grain: in the main process with
jaxface's read-ahead (``pipeline.READ_AHEAD``: the reference), with grain's default one
(16 threads, 500 batches ahead), and with 2 and 4 worker processes. Prints examples/s and
the ratio to the reference. Generation speed (images/s) is printed too.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import grain

from jaxface.data.pipeline import batch_iterator, grouped_batches
from jaxface.data.synthetic import generate


def examples_per_second(folder, groups_per_batch, per_identity, workers, steps,
                        grain_default=False):
    dataset = grouped_batches(folder, groups_per_batch, per_identity, seed=0)
    it = (iter(dataset.to_iter_dataset(grain.ReadOptions())) if grain_default
          else batch_iterator(dataset, workers=workers))
    batch = next(it)  # start-up (worker processes) not timed
    start = time.perf_counter()
    n = 0
    for _ in range(steps):
        batch = next(it)
        n += len(batch["identity"])
    rate = n / (time.perf_counter() - start)
    del it
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=64)
    parser.add_argument("--per-identity", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory() as folder:
        info = generate(folder, args.identities, args.per_identity, progress=False)
        n = info["splits"]["train"]["examples"]
        print(f"generated {n} images at 224x224 in {info['seconds']} s "
              f"({n / info['seconds']:.1f} img/s, including compilation)")
        groups = args.batch // args.per_identity
        reference = examples_per_second(folder, groups, args.per_identity, 0, args.steps)
        print("| reader | examples/s | ratio |\n|---|---:|---:|")
        print(f"| main process, READ_AHEAD (reference) | {reference:.1f} | 1.00 |", flush=True)
        rate = examples_per_second(folder, groups, args.per_identity, 0, args.steps, True)
        print(f"| main process, grain's default read-ahead | {rate:.1f} | "
              f"{rate / reference:.2f} |", flush=True)
        for workers in (2, 4):
            rate = examples_per_second(folder, groups, args.per_identity, workers, args.steps)
            print(f"| {workers} worker processes | {rate:.1f} | {rate / reference:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
