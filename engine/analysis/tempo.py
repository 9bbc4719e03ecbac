"""Tempo estimation: onset-strength autocorrelation with a log-normal tempo prior.

The estimator works on a mono signal:

1. an onset-strength envelope (half-wave rectified spectral flux of the log-compressed
   STFT magnitude, hop 128 at 22.05 kHz = 172 frames/s);
2. its autocorrelation, weighted by a log-normal prior centred on ``prior_bpm``;
3. the best period, moved to the faster metrical level when that level is almost as
   salient (so a 180 BPM click is not reported at 90);
4. sub-frame refinement by a least-squares fit through the peaks at every multiple of the
   period, which brings the error on a steady pulse well under 1 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import uniform_filter1d

from engine.errors import AudioError

HOP = 128
N_FFT = 1024
MAX_LAG_S = 4.0
FASTER_LEVEL_RATIO = 0.9  # a half period this salient (relative) wins
FLUX_FLOOR = 0.15  # log-magnitude rise per bin ignored as ripple
N_BANDS = 48  # log-spaced bands the spectrum is summed into
LOG_GAIN = 1000.0  # compression gain applied to the peak-normalised magnitude
MIN_CONFIDENCE = 0.1  # below this normalised autocorrelation there is no pulse
N_CANDIDATES = 10  # periodicity peaks kept per region as evidence for the track-level tempo


@dataclass(frozen=True)
class TempoEstimate:
    """A tempo in BPM and how periodic the onsets are.

    Attributes:
        bpm: beats per minute, None when no periodic pulse was found.
        confidence: normalised autocorrelation at the chosen period, in [0, 1].
        candidates: the strongest periodicities in range as ``(bpm, salience)``, salience the
            normalised autocorrelation in [0, 1], strongest first: the evidence a track-level
            decoder weighs (every metrical level shows up here, not only the chosen one).
    """

    bpm: float | None
    confidence: float
    candidates: tuple[tuple[float, float], ...] = ()


def onset_envelope(y: np.ndarray, *, sr: int, hop: int = HOP, n_fft: int = N_FFT) -> np.ndarray:
    """Onset strength per STFT frame: ``[frames]`` at ``sr / hop`` frames per second."""
    if y.size < n_fft:
        return np.zeros(0, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    window = np.hanning(n_fft).astype(np.float32)
    # scipy's pocketfft transforms float32 frames in single precision: ~4x numpy.fft here
    mag = np.abs(scipy.fft.rfft(frames * window, axis=1)) @ _band_matrix(sr, n_fft)
    # level-invariant compression: 1 = the loudest bin, about 60 dB of range above the floor
    peak = float(mag.max())
    logmag = np.log1p(LOG_GAIN * mag / peak) if peak > 0 else mag
    # rises below FLUX_FLOOR are STFT ripple (a steady tone beating against the hop), not onsets
    flux = np.maximum(np.diff(logmag, axis=0) - FLUX_FLOOR, 0.0).sum(axis=1)
    # remove the slowly varying part so sustained loudness does not look like a pulse
    local = uniform_filter1d(flux, size=max(1, round(0.5 * sr / hop)), mode="nearest")
    return np.maximum(flux - local, 0.0).astype(np.float32)


def _band_matrix(sr: int, n_fft: int, *, n_bands: int = N_BANDS) -> np.ndarray:
    """``[bins, bands]`` 0/1 matrix summing STFT bins into log-spaced bands (30 Hz - 11 kHz).

    Summing before the log keeps the ripple of a steady tone's low-level bins from looking
    like onsets.
    """
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = np.geomspace(30.0, min(11025.0, sr / 2), n_bands + 1)
    band = np.searchsorted(edges, freqs, side="right") - 1
    m = np.zeros((freqs.size, n_bands), dtype=np.float32)
    ok = (band >= 0) & (band < n_bands)
    m[np.flatnonzero(ok), band[ok]] = 1.0
    return m


def estimate_tempo(
    y: np.ndarray,
    *,
    sr: int,
    min_bpm: float = 40.0,
    max_bpm: float = 240.0,
    prior_bpm: float = 120.0,
    prior_octaves: float = 1.0,
) -> TempoEstimate:
    """Estimate the tempo of a mono signal.

    Args:
        y: ``[frames]`` mono float32 audio.
        sr: sample rate in Hz.
        min_bpm: slowest tempo considered.
        max_bpm: fastest tempo considered.
        prior_bpm: centre of the log-normal prior over tempi.
        prior_octaves: standard deviation of that prior, in octaves.

    Returns:
        The tempo and its confidence; ``bpm`` is None when the signal has no pulse or is
        shorter than two periods of ``min_bpm``.

    Raises:
        AudioError: ``y`` is empty or not finite.
    """
    if y.size == 0 or not np.isfinite(y).all():
        raise AudioError("tempo: signal is empty or holds NaN/Inf samples")
    fps = sr / HOP
    env = onset_envelope(y, sr=sr)
    max_lag = min(int(fps * 60.0 / min_bpm), env.size // 2)
    min_lag = max(1, int(np.floor(fps * 60.0 / max_bpm)))
    if env.size == 0 or max_lag <= min_lag + 2 or not env.any():
        return TempoEstimate(None, 0.0)
    acf = _autocorrelation(env - env.mean(), max_lag=int(min(fps * MAX_LAG_S, env.size - 1)))
    if acf[0] <= 0:
        return TempoEstimate(None, 0.0)
    acf = acf / acf[0]
    # local maxima of the autocorrelation whose lag lies in [min_lag, max_lag]
    lo, hi = max(1, min_lag - 1), min(acf.size - 1, max_lag + 1)
    seg = acf[lo : hi + 1]
    lags = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1 + lo
    lags = lags[(lags >= min_lag) & (lags <= max_lag)]
    if lags.size == 0:
        return TempoEstimate(None, 0.0)
    # evidence for the track decoder: peaks down to MAX_LAG_S (bar-level periodicities too),
    # so a tempo's multiples can be weighed even when they lie below min_bpm
    slow = acf[lo : acf.size]
    all_lags = np.flatnonzero((slow[1:-1] > slow[:-2]) & (slow[1:-1] >= slow[2:])) + 1 + lo
    candidates = _candidates(acf, all_lags[all_lags >= min_lag], fps=fps)
    prior = np.exp(-0.5 * (np.log2(60.0 * fps / lags / prior_bpm) / prior_octaves) ** 2)
    best = int(lags[np.argmax(acf[lags] * prior)])
    while best / 2 >= min_lag:
        half = _peak_near(acf, best / 2)
        if acf[round(half)] < FASTER_LEVEL_RATIO * acf[best]:
            break
        best = round(half)
    confidence = float(np.clip(acf[best], 0.0, 1.0))
    if confidence < MIN_CONFIDENCE:
        return TempoEstimate(None, confidence, candidates)
    period = _refine_period(acf, best)
    return TempoEstimate(float(60.0 * fps / period), confidence, candidates)


def _candidates(
    acf: np.ndarray, lags: np.ndarray, *, fps: float
) -> tuple[tuple[float, float], ...]:
    """The :data:`N_CANDIDATES` most salient autocorrelation peaks as ``(bpm, salience)``."""
    top = lags[np.argsort(-acf[lags], kind="stable")[:N_CANDIDATES]]
    out = []
    for lag in top:
        salience = float(np.clip(acf[lag], 0.0, 1.0))
        if salience <= 0.0:
            continue
        out.append(
            (round(60.0 * fps / _peak_near(acf, float(lag), radius=1), 3), round(salience, 4))
        )
    return tuple(out)


def _autocorrelation(x: np.ndarray, *, max_lag: int) -> np.ndarray:
    n = 1 << int(np.ceil(np.log2(2 * x.size)))
    spec = np.fft.rfft(x, n)
    return np.fft.irfft(spec * np.conj(spec), n)[: max_lag + 1]


def _peak_near(acf: np.ndarray, lag: float, *, radius: int = 2) -> float:
    """Sub-frame position of the largest autocorrelation value within ``radius`` of ``lag``."""
    lo = max(1, round(lag) - radius)
    hi = min(acf.size - 2, round(lag) + radius)
    if hi < lo:
        return lag
    i = lo + int(np.argmax(acf[lo : hi + 1]))
    a, b, c = acf[i - 1], acf[i], acf[i + 1]
    denom = a - 2 * b + c
    offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return i + float(np.clip(offset, -0.5, 0.5))


def _refine_period(acf: np.ndarray, lag: int) -> float:
    """Least-squares period through the peaks near every multiple of ``lag``."""
    ks, ls = [], []
    period = float(lag)
    for k in range(1, int((acf.size - 2) // lag) + 1):
        pos = _peak_near(acf, k * period)
        if round(pos) >= acf.size or acf[round(pos)] < 0.5 * acf[lag]:
            break
        ks.append(k)
        ls.append(pos)
        period = float(np.dot(ks, ls) / np.dot(ks, ks))
    return period
