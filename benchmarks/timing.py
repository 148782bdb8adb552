"""The timing rule every benchmark here uses: median wall time after warm-up calls."""

from __future__ import annotations

import time

import jax
import numpy as np


def median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls
    (compilation, allocator); JAX results are waited for (asynchronous dispatch)."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))
