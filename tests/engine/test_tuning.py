"""engine.tuning: with glibc, freed blocks are reused instead of faulted in again."""

from __future__ import annotations

import platform
import resource

import numpy as np
import pytest

from engine.tuning import keep_freed_memory


def faults_of(regions: int) -> int:
    """Minor page faults while the temporaries of ``regions`` 10 s regions come and go (the
    loudness filter's stereo float64 copy, its squares and running sums, a spectrogram)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(regions):
        x = np.empty((2, 441_000))
        x.fill(0.5)
        running = np.cumsum(x * x, axis=1)
        frames = np.ones((1723, 1024), np.float32)
        spectrum = np.abs(np.fft.rfft(frames, axis=1))
        del x, running, frames, spectrum
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_blocks_are_reused_without_page_faults() -> None:
    # without the setting glibc trims and re-maps these blocks: about 3,700 faults per region
    # on the build machine (186,600 for 50)
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process, the same answer after
    faults_of(2)  # the heap grows to hold one region's blocks
    assert faults_of(20) < 2_000
