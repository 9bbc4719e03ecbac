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

import functools
from dataclasses import dataclass, field

import numpy as np

from daw_bridge.regions import plan_regions
from engine.analysis.chroma import ChromaConfig, estimate_tuning, pitch_profiles, spectral_peaks

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
# A lone bass (:func:`lone_bass`): blocks of the track whose pitched content is one low line.
VOICE_MIN_HZ, VOICE_MAX_HZ = 30.0, 3000.0  # the spectrum the voices are read from
VOICE_F0_HZ = (35.0, 1000.0)  # fundamentals tried, a third of a semitone apart
VOICE_PARTIALS = 10  # partials summed per fundamental, the h-th weighted 1/h
BASS_VOICE_HZ = 150.0  # a first voice under this is the bass
SECOND_VOICE = 0.5  # a second voice stands out at this share of the first's salience
LONE_BASS_BLOCK_S = 10.0  # judged a block at a time (a tail under half a block joins the last)
# A block is a lone bass where its first voice is the bass in at least LONE_BASS_LOW of its
# loud frames (the 70 % loudest) and a second voice above the bass sounds in at most
# LONE_BASS_UP of them. Chosen from the range that no keyed render and no Beatles or GTZAN
# development key objects to, (0.75, 0.10) to (0.5, 0.3), between its ends. The shared
# drum-and-bass stem's values (0.94-1.00, 0.10-0.14) were known when it was chosen, and the
# range's tight end would not catch it (docs/benchmarks.md "A lone bass").
LONE_BASS_LOW = 0.625
LONE_BASS_UP = 0.2
# ... and only where its partials are not held clearly in tune (tested first: it is cheap): at
# this tonality a region has a key without chords (the lite preset's
# ``track.min_tonality_chordless``; a test holds the two equal), and the renders whose chords
# look like a lone bass (root-position triads on the bass's overtones: 44 of 432 clean
# progression regions at (0.5, 0.3)) all read 0.63 or more. A bass held that clearly is left
# to the chord recogniser.
LONE_BASS_MAX_TONALITY = 0.25
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
        lone_bass: whether each frame lies in a block whose pitched content is one low line
            (:func:`lone_bass`) ``[frames]``.
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
    lone_bass: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

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
        lone_bass=lone_bass(y, sr, mag, freqs, times),
    )


def lone_bass(
    y: np.ndarray, sr: int, mag: np.ndarray, freqs: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Which frames lie in a block of the track whose pitched content is one low line: a bass
    alone (with drums, say), whose overtones the chord recogniser would otherwise read as
    chords. ``y`` holds the samples at ``sr``, ``mag`` their spectrum ``[frames, bins]`` at
    ``freqs``; frame centres ``times``.

    In each frame the spectrum between :data:`VOICE_MIN_HZ` and :data:`VOICE_MAX_HZ`, under
    the harmonic mask (:func:`harmonic_part`) and log-compressed against the block's loudest
    bin, gives each fundamental a salience: its :data:`VOICE_PARTIALS` partials summed, the
    h-th weighted 1/h, less the median over fundamentals. The most salient is the first voice;
    with its partials removed, the most salient left is the second. A block
    (:data:`LONE_BASS_BLOCK_S`) is a lone bass where, over its loud frames, the first voice lies
    under :data:`BASS_VOICE_HZ` in at least :data:`LONE_BASS_LOW` of them and a second voice
    above it reaches :data:`SECOND_VOICE` of the first's salience in at most
    :data:`LONE_BASS_UP`, and its tonality (:func:`engine.analysis.chroma.pitch_profiles`) is
    under :data:`LONE_BASS_MAX_TONALITY`: chords over a bass whose notes lie on its overtones
    (root-position triads) can look like a lone bass, but they are held in tune.
    """
    out = np.zeros(times.size, dtype=bool)
    band = np.flatnonzero((freqs >= VOICE_MIN_HZ) & (freqs <= VOICE_MAX_HZ))
    if times.size == 0 or band.size < 2:
        return out
    step = float(freqs[band[1]] - freqs[band[0]])
    if not np.allclose(np.diff(freqs[band]), step):
        raise ValueError("lone_bass needs evenly spaced frequency bins (an FFT's)")
    sal_of, covers, f0 = _voice_templates(band.size, float(freqs[band[0]]), step)
    context = HARMONIC_FRAMES // 2
    # the blocks are the default regions' plan: a short tail joins the block before
    blocks = plan_regions(y.size / sr, length_s=LONE_BASS_BLOCK_S, min_tail_s=LONE_BASS_BLOCK_S / 2)
    for start_s, end_s in blocks:
        rows = np.flatnonzero((times >= start_s) & (times < end_s))
        if rows.size == 0:
            continue
        # the cheap test first: a block held in tune is left to the chord recogniser anyway
        if pitch_profiles(y[round(start_s * sr) : round(end_s * sr)], sr=sr).tonality >= (
            LONE_BASS_MAX_TONALITY
        ):
            continue
        # the mask over the block and its neighbours' nearest frames, as over the whole track
        lo, hi = max(0, rows[0] - context), min(times.size, rows[-1] + 1 + context)
        masked = harmonic_part(mag[lo:hi, band])[rows[0] - lo : rows[-1] + 1 - lo]
        level = np.log1p(100.0 * masked / (float(mag[rows].max()) + 1e-9))
        sal = level @ sal_of
        first = sal.argmax(axis=1)
        s1 = sal[np.arange(rows.size), first] - np.median(sal, axis=1)
        rest = (level * ~covers[first]) @ sal_of
        s2 = rest.max(axis=1) - np.median(rest, axis=1)
        second = f0[rest.argmax(axis=1)]
        total = level.sum(axis=1)  # the frame's masked, compressed level in the voices' band
        loud = total > np.percentile(total, 30)
        if not loud.any():
            continue
        low = float(np.mean(f0[first][loud] < BASS_VOICE_HZ))
        above = (second >= BASS_VOICE_HZ) & (s2 > SECOND_VOICE * np.maximum(s1, 1e-6))
        out[rows] = low >= LONE_BASS_LOW and float(np.mean(above[loud])) <= LONE_BASS_UP
    return out


@functools.lru_cache(maxsize=4)
def _voice_templates(
    bins: int, first_hz: float, step_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``bins`` bins from ``first_hz`` every ``step_hz``: the salience weights
    ``[bins, f0s]`` (partial h of each fundamental weighted 1/h within 2 % or 4 Hz), which bins
    each fundamental's partials cover ``[f0s, bins]``, and the fundamentals ``[f0s]`` in Hz
    (computed once per spectrum layout)."""
    freqs = first_hz + step_hz * np.arange(bins)
    lo, hi = VOICE_F0_HZ
    steps = np.arange(round(36 * np.log2(lo / 440.0)), round(36 * np.log2(hi / 440.0)) + 1)
    f0 = 440.0 * 2.0 ** (steps / 36.0)
    weights = np.zeros((f0.size, freqs.size), np.float32)
    for i, f in enumerate(f0):
        for h in range(1, VOICE_PARTIALS + 1):
            if h * f > VOICE_MAX_HZ:
                break
            near = np.abs(freqs - h * f) <= max(0.02 * h * f, 4.0)
            weights[i, near] = np.maximum(weights[i, near], 1.0 / h)
    out = (weights.T.copy(), weights > 0, f0)
    for a in out:
        a.setflags(write=False)  # shared by every call (cached)
    return out


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
