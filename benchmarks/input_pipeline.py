"""Input pipeline speed: identity-grouped batches from a synthetic dataset folder.

    python benchmarks/input_pipeline.py [--identities 64] [--per-identity 4] [--batch 8]

Writes a synthetic dataset (224 x 224) to a temporary folder, then reads batches of
``--batch`` images (batch / K identities x K) through grain: in the main process (the
reference) and with 2 and 4 worker processes. Prints examples/s and the ratio to the
reference. Generation speed (images/s) is printed too.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from jaxface.data.pipeline import batch_iterator, grouped_batches
from jaxface.data.synthetic import generate


def examples_per_second(folder, groups_per_batch, workers, steps):
    it = batch_iterator(grouped_batches(folder, groups_per_batch, seed=0), workers=workers)
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
        reference = examples_per_second(folder, groups, 0, args.steps)
        print(f"{'workers':>8}{'examples/s':>12}{'ratio':>8}")
        print(f"{'0 (ref)':>8}{reference:>12.1f}{1.0:>8.2f}", flush=True)
        for workers in (2, 4):
            rate = examples_per_second(folder, groups, workers, args.steps)
            print(f"{workers:>8}{rate:>12.1f}{rate / reference:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
