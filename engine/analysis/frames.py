"""One short-time spectrum of the whole track, and the features the form and the chords read.

The beat grid already holds the track's mono samples at :data:`~engine.analysis.beats.GRID_SR`;
the track-level analyses that follow it (sections, chords) need spectral features of the same
samples. :func:`track_frames` computes the spectrum once and derives from it:

- ``chroma``: 12 pitch classes (0 = C) of the treble, folded from log-compressed magnitudes
  after a global tuning correction;
- ``bass``: the same below :data:`BASS_SPLIT_HZ` (the chord's root is usually there);
- ``harmony``: the pitch classes the chords are read from: the accompaniment's register,
  :data:`HARMONY_MIN_HZ` to :data:`HARMONY_MAX_HZ` (the bass's upper octave in, most of the
  melody's notes and overtones out), under a harmonic mask (:func:`harmonic_part`: a drum
  hit's broadband frame out, so a piano's decaying third is not drowned by the hi-hats'
  noise), compressed more gently (:data:`HARMONY_GAIN`) and scaled
  so that each frame's strongest class is 1, so a loud frame does not outweigh the rest of its
  beat;
- ``timbre``: MFCCs of a mel spectrum (instrumentation, density);
- ``rms``: frame loudness in dB; ``low``: the energy of the kick band in dB.

:func:`beat_sync` averages any ``[features, frames]`` array between consecutive times (beats,
bars), the unit both analyses decide on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.analysis.chroma import ChromaConfig, estimate_tuning, spectral_peaks

FRAME_FFT = 4096  # at the grid's rate: 371 ms, 2.7 Hz bins, so bass semitones separate
FRAME_HOP = 1024  # 93 ms
FMIN_HZ = 50.0
FMAX_HZ = 2500.0
BASS_SPLIT_HZ = 200.0
# The chords' register and compression, chosen on bench/chords.py's train renders together with
# a development set of real recordings (the second song of each Beatles album), never on the
# sets it reports.
HARMONY_MIN_HZ = 100.0
HARMONY_MAX_HZ = 1300.0
HARMONY_GAIN = 10.0  # log1p(gain x magnitude / the track's largest)
# The harmony's mask (:func:`harmonic_part`): medians over this many frames (0.46 s) and bins
# (24 Hz). Chosen with bench/chords.py on its train renders and the Beatles development songs
# (majmin: 0.935 / 0.680 without a mask, 0.940 / 0.730 with it; 3-17 frames x 5-17 bins tried).
HARMONIC_FRAMES = 5
PERCUSSIVE_BINS = 9
N_MELS = 40
N_MFCC = 13
LOW_BAND_HZ = 150.0
TUNING_STRIDE = 2  # frames between those the tuning is read from (186 ms)


@dataclass(frozen=True)
class TrackFrames:
    """Spectral features of a whole track, one column a frame.

    Attributes:
        sr: the samples' rate.
        hop: frame hop in samples.
        times: centre of each frame in seconds ``[frames]``.
        chroma: treble pitch-class energy ``[12, frames]`` (0 = C), log-compressed.
        bass: bass pitch-class energy ``[12, frames]``, log-compressed.
        timbre: MFCCs ``[N_MFCC, frames]``.
        rms: frame level in dB ``[frames]``.
        low: kick-band level in dB ``[frames]``.
        tuning: the global tuning deviation in semitones in [-0.5, 0.5).
        harmony: pitch classes of the chords' register ``[12, frames]``, log-compressed.
    """

    sr: int
    hop: int
    times: np.ndarray
    chroma: np.ndarray
    bass: np.ndarray
    timbre: np.ndarray
    rms: np.ndarray
    low: np.ndarray
    tuning: float
    harmony: np.ndarray = field(default_factory=lambda: np.zeros((12, 0), np.float32))

    @property
    def n_frames(self) -> int:
        return int(self.times.size)


def track_frames(y: np.ndarray, *, sr: int) -> TrackFrames:
    """The features of mono samples ``y`` at rate ``sr`` (any length, silence included)."""
    import scipy.fft

    y = np.asarray(y, dtype=np.float32)
    if y.size < FRAME_FFT:
        y = np.pad(y, (0, FRAME_FFT - y.size))
    frames = np.lib.stride_tricks.sliding_window_view(y, FRAME_FFT)[::FRAME_HOP]
    window = np.hanning(FRAME_FFT).astype(np.float32)
    mag = np.abs(scipy.fft.rfft(frames * window, axis=1)).astype(np.float32)
    freqs = np.fft.rfftfreq(FRAME_FFT, 1.0 / sr)
    times = (np.arange(mag.shape[0]) * FRAME_HOP + FRAME_FFT / 2) / sr

    band = (freqs >= FMIN_HZ) & (freqs <= FMAX_HZ)
    midi = 12 * np.log2(freqs[band] / 440.0) + 69
    banded = mag[:, band]
    peak = float(mag.max()) + 1e-9
    tuning = _tuning(mag, sr)
    fold = _fold_matrix(midi - tuning)
    compressed = np.log1p(100.0 * banded / peak)
    is_bass = freqs[band] < BASS_SPLIT_HZ
    chroma = (compressed[:, ~is_bass] @ fold[~is_bass]).T
    bass = (compressed[:, is_bass] @ fold[is_bass]).T
    voicing = (freqs[band] >= HARMONY_MIN_HZ) & (freqs[band] <= HARMONY_MAX_HZ)
    gentle = np.log1p(HARMONY_GAIN * harmonic_part(banded[:, voicing]) / peak)
    harmony = (gentle @ fold[voicing]).T
    harmony /= harmony.max(axis=0, keepdims=True) + 1e-9

    power = mag.astype(np.float64) ** 2
    rms = 10 * np.log10(power.sum(axis=1) / FRAME_FFT + 1e-12)
    low = 10 * np.log10(power[:, freqs < LOW_BAND_HZ].sum(axis=1) / FRAME_FFT + 1e-12)
    mel = _mel_matrix(sr, freqs) @ power.T
    timbre = scipy.fft.dct(np.log10(mel + 1e-10), axis=0, norm="ortho")[:N_MFCC]
    return TrackFrames(
        sr=sr,
        hop=FRAME_HOP,
        times=times,
        chroma=chroma,
        bass=bass,
        timbre=timbre.astype(np.float32),
        rms=rms.astype(np.float32),
        low=low.astype(np.float32),
        tuning=tuning,
        harmony=harmony,
    )


def harmonic_part(mag: np.ndarray) -> np.ndarray:
    """``mag`` (``[frames, bins]``) under a soft harmonic mask: a bin keeps the share
    ``H^2 / (H^2 + P^2)`` of its magnitude, ``H`` its median over :data:`HARMONIC_FRAMES`
    frames (steady partials), ``P`` its median over :data:`PERCUSSIVE_BINS` bins (a drum
    hit's broadband frame), as in median-filtering harmonic/percussive separation."""
    if mag.size == 0:
        return mag
    h = running_median(mag, HARMONIC_FRAMES, axis=0)
    p = running_median(mag, PERCUSSIVE_BINS, axis=1)
    h2 = h.astype(np.float64) ** 2
    return (mag * (h2 / (h2 + p.astype(np.float64) ** 2 + 1e-18))).astype(np.float32)


def running_median(x: np.ndarray, n: int, *, axis: int) -> np.ndarray:
    """The median of each element's ``n`` (odd) neighbours along ``axis``, the edge values
    repeated beyond the ends: what ``scipy.ndimage.median_filter`` gives with ``mode="nearest"``
    and a window along one axis, about twice as fast here (a partial sort of strided windows;
    ``tests/engine/test_frames.py`` checks the two agree)."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (n // 2, n // 2)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, mode="edge"), n, axis=axis)
    return np.partition(windows, n // 2, axis=-1)[..., n // 2]


def beat_sync(x: np.ndarray, frame_times: np.ndarray, bounds_s: np.ndarray) -> np.ndarray:
    """Mean of ``x`` (``[..., frames]``) over the frames whose centre lies in each interval
    ``[bounds_s[i], bounds_s[i + 1])``; an interval without a frame takes its nearest frame.

    Returns:
        ``[..., len(bounds_s) - 1]``.
    """
    bounds_s = np.asarray(bounds_s, dtype=np.float64)
    if bounds_s.size < 2 or frame_times.size == 0:
        return np.zeros((*x.shape[:-1], max(bounds_s.size - 1, 0)), dtype=np.float32)
    idx = np.searchsorted(frame_times, bounds_s)
    csum = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(x, axis=-1)], axis=-1)
    lo, hi = idx[:-1], idx[1:]
    out = (csum[..., hi] - csum[..., lo]) / np.maximum(hi - lo, 1)
    empty = hi <= lo
    if empty.any():
        centres = (bounds_s[:-1] + bounds_s[1:]) / 2
        right = np.clip(np.searchsorted(frame_times, centres[empty]), 0, frame_times.size - 1)
        left = np.maximum(right - 1, 0)
        closer_left = np.abs(frame_times[left] - centres[empty]) < np.abs(
            frame_times[right] - centres[empty]
        )
        out[..., empty] = x[..., np.where(closer_left, left, right)]
    return out.astype(np.float32)


def _fold_matrix(pitch: np.ndarray) -> np.ndarray:
    """``[bins, 12]``: each bin's weight on the two pitch classes around its (fractional)
    pitch, linear in the distance, so a bass note between two coarse bins keeps its class."""
    below = np.floor(pitch)
    frac = (pitch - below).astype(np.float32)
    fold = np.zeros((pitch.size, 12), dtype=np.float32)
    rows = np.arange(pitch.size)
    np.add.at(fold, (rows, below.astype(int) % 12), 1.0 - frac)
    np.add.at(fold, (rows, (below.astype(int) + 1) % 12), frac)
    return fold


def _tuning(mag: np.ndarray, sr: int) -> float:
    """Global deviation from equal temperament, in semitones in [-0.5, 0.5): the weighted
    circular mean of the interpolated spectral peaks' offsets from the nearest semitone
    (:func:`~engine.analysis.chroma.spectral_peaks`, every :data:`TUNING_STRIDE`-th frame).

    Peaks, not bins: a bin's centre is a semitone from its neighbour's at 50 Hz, so the
    magnitude-weighted offsets of bins lean wherever a loud bass note's bins happen to fall
    (a quarter of a semitone flat on most Beatles songs and on a sine bass in tune).
    """
    spec_db = 20.0 * np.log10(mag[::TUNING_STRIDE] + 1e-9, dtype=np.float32)
    cfg = ChromaConfig(n_fft=FRAME_FFT, fmin_hz=FMIN_HZ, fmax_hz=FMAX_HZ)
    midi, weight, _ = spectral_peaks(spec_db, cfg, sr=sr)
    return estimate_tuning(midi, weight) if midi.size else 0.0


def _mel_matrix(sr: int, freqs: np.ndarray) -> np.ndarray:
    """``[N_MELS, bins]`` triangular mel filters from 30 Hz to Nyquist (HTK mel scale)."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges_mel = np.linspace(mel(30.0), mel(sr / 2), N_MELS + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    fb = np.zeros((N_MELS, freqs.size), dtype=np.float64)
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
    return fb
