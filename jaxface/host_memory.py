"""The host allocator, set up for XLA's CPU runtime: freed memory stays mapped for reuse.

XLA's CPU programs allocate their buffers with ``malloc`` on every call. glibc hands the freed
top of its heaps back to the kernel as soon as it exceeds the trim threshold, so the next call
page-faults the same megabytes in again, each page zeroed by the kernel. Where a program's
arithmetic is cheap next to its buffers, that is most of its time: FLAME's forward+backward at
B = 64 (tens of 15 MB intermediates, a few ms of matrix products) took ~15 k minor page faults
per call and ran 2x slower than with the heap kept (``benchmarks/flame_forward.py``). Training
steps, dominated by the encoder's arithmetic, do not change measurably, and the README's main
command peaked 0.15 GB higher with it, so the ``jaxface`` command leaves the allocator alone:
call :func:`keep_freed_memory_mapped` first in a program that runs FLAME (or other cheap,
large-buffer programs) many times.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory_mapped(top_pad: int = 64 << 20, trim_threshold: int = 256 << 20,
                             mmap_threshold: int = 32 << 20) -> bool:
    """Sets glibc's allocator so that freed buffers stay mapped for the next call: each heap
    keeps ``top_pad`` bytes of slack when it grows or shrinks and is trimmed only when more
    than ``trim_threshold`` bytes are free at its top, and blocks under ``mmap_threshold``
    (32 MB, glibc's largest) come from the heaps, not from a fresh ``mmap`` each time.
    (Setting any of these turns off glibc's own adaptive thresholds, which is why all three
    are set: with the pad alone, PyTorch's tensors went to ``mmap`` and smplx ran 1.6x
    slower.) Process-wide and safe to call at any time; the cost is resident memory that is
    not given back between calls. The environment's ``MALLOC_TOP_PAD_`` etc. do the same at
    start-up. Returns False, changing nothing, where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold),
                (_M_TOP_PAD, top_pad))
    return all([mallopt(param, int(value)) == 1 for param, value in settings])
