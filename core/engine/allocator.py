"""Keep freed CPU tensor memory in the process instead of handing it back to the kernel.

With glibc's default malloc settings, every large CPU tensor freed in a training step is
returned to the kernel (heap trimming, ``munmap``) and the next step's tensors of the same
size fault fresh zeroed pages back in. On a 2-core machine that kernel work was 63 of 130
CPU-seconds of ``benchmarks/soundstream_vs_encodec.py``; keeping the memory made the
training step 7-17 % faster (docs/benchmarks.md). :func:`tune_cpu_allocator`
raises glibc's mmap and trim thresholds with ``mallopt`` at start-up: the peak footprint is
unchanged, memory freed by one step is reused by the next.

Set ``AUDIO_CORE_MALLOC_TUNING=0`` to leave the allocator alone. Does nothing where the C
library is not glibc (macOS, musl) or when ``MALLOC_TRIM_THRESHOLD_`` /
``MALLOC_MMAP_THRESHOLD_`` are already set in the environment (the user's own tuning wins).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: blocks up to 1 GiB come from the heap, not from their own mmap (glibc >= 2.35 accepts it); keep
#: up to 2 GiB of freed memory at the top of the heap
MMAP_THRESHOLD, TRIM_THRESHOLD = 2**30, 2**31 - 1
ENV = "AUDIO_CORE_MALLOC_TUNING"


def tune_cpu_allocator() -> bool:
    """Apply the settings above once per process; returns whether they were applied."""
    if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:  # the process's own symbols (no ctypes.util.find_library: it runs ldconfig/gcc)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return (bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
            and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
