"""Process-wide memory settings for the engine on a small machine: keep freed memory.

glibc's malloc hands every block over 128 KiB (a threshold it raises, at most to 32 MiB, as
blocks are freed) straight back to the kernel when it is freed (``mmap``/``munmap``), so
each 10 s region's temporary arrays (stereo float64 for the loudness filter, STFT frames,
spectra: several MB each) are faulted in again page by page: measured on the 2-core
machine, 0.3 s of system time in one ``sonicverse annotate`` of a 3-minute file, and
allocation-bound numpy loops 3x slower. :func:`keep_freed_memory` sets the thresholds with
``mallopt`` so such blocks come from, and go back to, the heap, which keeps up to
``trim_threshold`` bytes of freed memory for reuse instead of returning it.

Elsewhere than glibc (macOS, Windows, musl) it does nothing and says so in the log.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MIB = 1 << 20

_applied: bool | None = None


def keep_freed_memory(*, mmap_threshold: int = 32 * MIB, trim_threshold: int = 128 * MIB) -> bool:
    """Serve blocks up to ``mmap_threshold`` bytes from the heap and keep up to
    ``trim_threshold`` bytes of freed heap (glibc only; once per process).

    Returns:
        True when glibc took the settings (now or on an earlier call).
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.debug("no glibc mallopt (%s): malloc thresholds left as they are", name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # glibc refuses an mmap threshold over 32 MiB on 64-bit (HEAP_MAX_SIZE / 2 up to 2.34)
    mmap_ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
    trim_ok = bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
    if not (mmap_ok and trim_ok):
        log.info(
            "malloc: mmap threshold %d %s, trim threshold %d %s",
            mmap_threshold,
            "set" if mmap_ok else "refused",
            trim_threshold,
            "set" if trim_ok else "refused",
        )
    _applied = mmap_ok and trim_ok
    return _applied
