"""The beat grid of a whole track: beats, their place in the bar, the meter and the tempo.

One pass over the track's onset-strength envelope (:func:`engine.analysis.tempo.
onset_envelope`, 172 frames/s at 11.025 kHz):

1. **Tempo, locally.** The envelope's autocorrelation in 8 s windows (hop 2 s) is scored on
   a log-spaced tempo grid by a comb over the period and its double and quadruple (the bar):
   a 2:3 level lacks the support of its own multiples. A wide prior picks the track's main
   level, and a Viterbi pass keeps the windows near it and changes tempo only where the
   windows after it agree, so a tempo change is one change and a drum-less stretch keeps the
   grid.
2. **Beats** by dynamic programming over the envelope (Ellis 2007): every beat is an onset
   peak, and the gap to the previous beat stays close to the local period. A beat's time is
   the centre of the STFT window its onset rises into (the envelope's frames start 29 ms
   earlier), and the track is read with silence in front, so a beat at 0 s is found.
3. **Bars.** Each beat is described by its accent (onset strength), its low-band accent
   (kick) and how much the harmony changes there (chroma of the beat span against the one
   before). For 2, 3 and 4 beats to the bar and every phase, downbeats should carry the
   harmony changes and the accents; the best meter and phase win. A beat whose subdivisions
   fall in threes makes 2 beats to the bar 6/8.
4. **Tempi.** Stretches of steady beat period; each one's tempo is the least-squares slope of
   its beat times, and the track's tempo is the longest stretch's, so the tempo, the beats and
   the narrative agree.

A signal without a pulse (silence, speech, a drone) gets an empty grid, never an error.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.ndimage import median_filter

from engine.analysis.tempo import N_FFT, _autocorrelation, onset_envelope
from engine.track import viterbi
from engine.types import Beat, BeatGrid, TempoSpan

GRID_SR = 11025  # the grid's analysis rate
GRID_HOP = 64  # 172 frames/s, as the tempo analyser
GRID_FFT = 512
WINDOW_S = 8.0  # local tempo window
WINDOW_HOP_S = 2.0
NEARBY = 4  # windows whose tempo a beat may keep: two each side (half a window length)
GRID_STEP_OCTAVES = 1 / 48  # tempo grid resolution (1.5 %)
LEVEL_PRIOR_BPM = 118.0  # the tempo people tap, centre of a wide log-normal prior
LEVEL_PRIOR_OCTAVES = 1.5  # chosen on the train renders (bench/rhythm.py --split train)
CHANGE_PENALTY = 3.0  # nats a tempo change must earn over the windows after it (train renders)
DRIFT_STEPS = 2  # tempo moves this many grid steps between windows for free
TIGHTNESS = 100.0  # beat DP: cost of a beat gap off the period (librosa's default)
MIN_PULSE = 0.08  # normalised autocorrelation at the beat below which there is no pulse
METERS = (2, 3, 4)


EMPTY = BeatGrid()


def track_beats(
    y: np.ndarray,
    *,
    sr: int,
    min_bpm: float = 40.0,
    max_bpm: float = 240.0,
    prior_bpm: float = LEVEL_PRIOR_BPM,
) -> BeatGrid:
    """The beat grid of a mono signal (the whole track).

    Args:
        y: ``[frames]`` mono float audio.
        sr: its sample rate (22.05 kHz is what the analysers use).
        min_bpm: slowest beat considered.
        max_bpm: fastest beat considered.
        prior_bpm: centre of the wide prior that picks between a beat and its double or half.

    Returns:
        The grid; :data:`EMPTY` when the signal has no pulse or is shorter than two beats.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.size < N_FFT or not np.isfinite(y).all() or not np.any(y):
        return EMPTY
    if sr != GRID_SR:  # half the analysers' rate: the same frame rate at a quarter of the work
        import soxr

        y = soxr.resample(y, sr, GRID_SR, quality="LQ").astype(np.float32, copy=False)
        sr = GRID_SR
    fps = sr / GRID_HOP
    # silence in front, so that an onset at 0 s rises like any other
    y = np.concatenate([np.zeros(GRID_FFT, dtype=np.float32), y])
    env = onset_envelope(y, sr=sr, hop=GRID_HOP, n_fft=GRID_FFT)
    if env.size < 4 or not env.any():
        return EMPTY
    env = env / (float(np.percentile(env[env > 0], 95)) + 1e-9)
    grid = min_bpm * 2.0 ** (
        GRID_STEP_OCTAVES * np.arange(int(math.log2(max_bpm / min_bpm) / GRID_STEP_OCTAVES) + 1)
    )
    local = _local_periods(env, fps=fps, grid=grid, prior_bpm=prior_bpm)
    if local is None:
        return EMPTY
    periods, nearby = local
    frames = _track(env, periods, nearby)
    if frames.size < 2:
        return EMPTY
    # envelope frame f is the rise into STFT frame f + 1, whose window is centred on the onset
    times = np.maximum(frames / fps + (GRID_HOP + GRID_FFT / 2 - GRID_FFT) / sr, 0.0)
    spans = _spans(times)
    if not spans:  # two beats tell no tempo: no grid rather than beats without one
        return EMPTY
    # the beat's onset strength against the envelope's mean: 1 is every beat on a clear onset
    on = float(np.mean(_peaks_at(env, frames)))
    confidence = float(np.clip((on - env.mean()) / (on + 1e-9), 0.0, 1.0))
    meter, phase, compound = _meter(y, sr=sr, env=env, frames=frames, periods=periods)
    positions = [(i - phase) % meter + 1 for i in range(frames.size)]
    beats = tuple(Beat(round(float(t), 4), int(p)) for t, p in zip(times, positions, strict=True))
    label = "6/8" if compound and meter == 2 else f"{meter}/4"
    # the track's tempo: the tempo it spends the most time at
    tempo = max(spans, key=lambda sp: sp.end_s - sp.start_s).bpm
    return BeatGrid(beats, label, tempo, round(confidence, 3), spans)


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation of ``x`` less its mean, 1 at lag 0 (zeros for a constant ``x``)."""
    a = _autocorrelation(x - x.mean(), max_lag=max_lag)
    return a / a[0] if a[0] > 0 else np.zeros_like(a)


def _peaks_at(env: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The envelope's largest value within two frames of each of ``frames``."""
    return np.array([env[max(0, f - 2) : f + 3].max() for f in frames])


COMB_WEIGHTS = (1.0, 0.5, 0.25)  # the beat's period, its double and its quadruple (the bar)


def _window_scores(seg: np.ndarray, *, fps: float, grid: np.ndarray) -> tuple[np.ndarray, float]:
    """Per grid tempo, the window's enhanced autocorrelation there (the period and its
    multiples: a 2:3 level lacks the support of its own multiples), and its pulse strength."""
    periods = 60.0 * fps / grid
    max_lag = min(seg.size - 1, int(4 * periods.max()) + 2)
    acf = np.maximum(_acf(seg, max_lag), 0.0)
    lags = np.arange(acf.size)
    comb = sum(
        w * np.interp(k * periods, lags, acf, right=0.0)
        for k, w in zip((1, 2, 4), COMB_WEIGHTS, strict=True)
    )
    pulse = float(np.interp(periods[np.argmax(comb)], lags, acf))
    return comb, pulse


def _local_periods(
    env: np.ndarray, *, fps: float, grid: np.ndarray, prior_bpm: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Beat period in frames at every envelope frame ``[frames]``, and the periods of the
    windows within half a window of it ``[frames, NEARBY]``; None when there is no pulse."""
    win = int(WINDOW_S * fps)
    hop = int(WINDOW_HOP_S * fps)
    starts = list(range(0, max(1, env.size - win + 1), hop)) if env.size > win else [0]
    scores, pulses = [], []
    for s in starts:
        sc, pulse = _window_scores(env[s : s + win], fps=fps, grid=grid)
        scores.append(sc)
        pulses.append(pulse)
    ev = np.array(scores)
    if float(np.max(pulses)) < MIN_PULSE or not np.any(ev > 0):
        return None
    ev = ev / (ev.max(axis=1, keepdims=True) + 1e-9)
    prior = -0.5 * (np.log2(grid / prior_bpm) / LEVEL_PRIOR_OCTAVES) ** 2
    # the track's level: the summed evidence with the prior; windows stay near it
    main = int(np.argmax(np.log(ev.mean(axis=0) + 1e-3) + prior))
    level = -0.5 * (np.log2(grid / grid[main]) / 0.35) ** 2
    emit = np.log(ev + 0.02) + level
    steps = np.arange(grid.size)
    trans = np.where(np.abs(steps[:, None] - steps[None, :]) <= DRIFT_STEPS, 0.0, -CHANGE_PENALTY)
    path = viterbi(emit, trans)
    centres = np.array(starts) + min(win, env.size) / 2
    bpm = grid[path]
    frame_bpm = np.interp(np.arange(env.size), centres, bpm)
    # a window straddling a tempo change blurs it: near one, a beat may keep either tempo
    near = np.searchsorted(centres, np.arange(env.size))
    offsets = np.arange(-NEARBY // 2, NEARBY - NEARBY // 2)
    idx = np.clip(near[:, None] + offsets[None, :], 0, bpm.size - 1)
    return 60.0 * fps / frame_bpm, 60.0 * fps / bpm[idx]


def _track(env: np.ndarray, periods: np.ndarray, nearby: np.ndarray) -> np.ndarray:
    """Beat frames by dynamic programming: onsets on beats, gaps near the local period, or
    near any of the ``nearby`` windows' periods (so a tempo change happens on the beat where
    the onsets change, not where the windows' centres put it).

    Frames are scored in blocks of half the shortest period, so every gap a block looks back
    over ends in an earlier, finished block: one vectorised step per block.
    """
    n = env.size
    local = env - 0.5 * env.std()  # a beat on a quiet frame costs, on an onset earns
    score = local.astype(np.float64).copy()
    back = np.full(n, -1, dtype=np.int64)
    t0 = 0
    while t0 < n:
        p_min = float(periods[t0 : t0 + int(periods[t0])].min())
        t1 = min(n, t0 + max(1, int(p_min / 2)))
        ts = np.arange(t0, t1)
        d = np.arange(max(1, int(p_min / 2)), int(2 * periods[ts].max()) + 1)[None, :]
        prev = ts[:, None] - d
        ok = (prev >= 0) & (d >= periods[ts][:, None] / 2) & (d <= 2 * periods[ts][:, None])
        # the block's tempi (one in a steady stretch): a gap costs its distance to the nearest
        near = np.unique(nearby[ts])
        off = np.min(np.log(d[..., None] / near) ** 2, axis=-1)
        cost = np.where(ok, -TIGHTNESS * off, -np.inf)
        cand = np.where(ok, score[np.clip(prev, 0, None)], -np.inf) + cost
        j = np.argmax(cand, axis=1)
        best = cand[np.arange(ts.size), j]
        has = np.isfinite(best)
        score[ts[has]] = local[ts[has]] + best[has]
        back[ts[has]] = prev[np.arange(ts.size), j][has]
        t0 = t1
    # the last beat: the best-scoring frame within one period of the end
    tail = max(0, int(n - periods[-1]))
    t = tail + int(np.argmax(score[tail:]))
    beats = []
    while t >= 0:
        beats.append(t)
        t = int(back[t])
    beats_a = np.array(beats[::-1])
    # beats before the music starts (a quiet intro) are not beats
    strong = _peaks_at(env, beats_a)
    floor = 0.1 * float(np.median(strong[strong > 0])) if strong.any() else 1.0
    ok_idx = np.flatnonzero(strong > floor)
    if ok_idx.size == 0:
        return np.zeros(0, dtype=np.int64)
    return beats_a[ok_idx[0] : ok_idx[-1] + 1]


def _meter(
    y: np.ndarray, *, sr: int, env: np.ndarray, frames: np.ndarray, periods: np.ndarray
) -> tuple[int, int, bool]:
    """Beats to the bar, the index of the first downbeat among the beats, and whether the
    beat divides in three (compound time)."""
    n = frames.size
    # per beat: accent, low-band accent, harmony change
    accent = _peaks_at(env, frames)
    low = _low_band_accent(y, sr=sr, frames=frames)
    chroma, chroma_fps = _chroma(y, sr=sr)
    times = np.append(frames, frames[-1] + np.median(np.diff(frames))) * GRID_HOP / sr
    edges = np.round(times * chroma_fps).astype(int)
    spans = np.array(
        [
            chroma[:, a : max(a + 1, b)].mean(axis=1) if a < chroma.shape[1] else np.zeros(12)
            for a, b in itertools.pairwise(edges)
        ]
    )
    spans = spans / (np.linalg.norm(spans, axis=1, keepdims=True) + 1e-9)
    change = np.r_[0.0, 1.0 - np.sum(spans[1:] * spans[:-1], axis=1)]
    feats = [_z(change), _z(low), _z(accent)]
    weights = (1.0, 0.6, 0.3)
    best = (-np.inf, 4, 0)
    for m in METERS:
        if n < 2 * m:
            continue
        for phase in range(m):
            down = np.zeros(n, dtype=bool)
            down[phase::m] = True
            s = sum(
                w * (f[down].mean() - f[~down].mean()) for f, w in zip(feats, weights, strict=True)
            )
            # a longer bar must explain more: each extra beat per bar costs a little
            s -= 0.08 * (m - 2)
            if s > best[0]:
                best = (s, m, phase)
    _, meter, phase = best
    # 2 and 4 beats to the bar share their downbeats; prefer 4 when its half-bars differ
    if meter == 2 and n >= 8:
        s4 = [_bar_contrast(feats, weights, n, 4, ph) for ph in (phase, phase + 2)]
        if max(s4) > 0.0:  # any difference between the half-bars: 4/4 (2/4 is rarer)
            meter, phase = 4, (phase if s4[0] >= s4[1] else phase + 2) % 4
    compound = _ternary(env, periods)
    return meter, int(phase), compound


def _bar_contrast(
    feats: list[np.ndarray], weights: tuple[float, ...], n: int, m: int, phase: int
) -> float:
    down = np.zeros(n, dtype=bool)
    down[phase % m :: m] = True
    half = np.zeros(n, dtype=bool)
    half[(phase + m // 2) % m :: m] = True
    return float(
        sum(w * (f[down].mean() - f[half].mean()) for f, w in zip(feats, weights, strict=True))
    )


CHROMA_FFT = 2048  # at the grid's rate: 186 ms frames
CHROMA_HOP = 512


def _chroma(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, float]:
    """``[12, frames]`` log-magnitude pitch-class energy (60 Hz - 2 kHz) and its frame rate."""
    import scipy.fft

    if y.size < CHROMA_FFT:
        return np.zeros((12, 1)), sr / CHROMA_HOP
    frames = np.lib.stride_tricks.sliding_window_view(y, CHROMA_FFT)[::CHROMA_HOP]
    mag = np.abs(scipy.fft.rfft(frames * np.hanning(CHROMA_FFT).astype(np.float32), axis=1))
    freqs = np.fft.rfftfreq(CHROMA_FFT, 1.0 / sr)
    ok = (freqs >= 60.0) & (freqs <= 2000.0)
    pc = np.round(12 * np.log2(freqs[ok] / 440.0) + 69).astype(int) % 12
    fold = np.zeros((ok.sum(), 12), dtype=np.float32)
    fold[np.arange(ok.sum()), pc] = 1.0
    chroma = np.log1p(100.0 * mag[:, ok] / (mag.max() + 1e-9)) @ fold
    return chroma.T, sr / CHROMA_HOP


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def _low_band_accent(y: np.ndarray, *, sr: int, frames: np.ndarray) -> np.ndarray:
    """Energy below 150 Hz in the 50 ms after each beat (the kick)."""
    from scipy.signal import butter, sosfilt

    sos = butter(2, 150.0, btype="low", fs=sr, output="sos")
    low = sosfilt(sos, y).astype(np.float32) ** 2
    n = int(0.05 * sr)
    return np.array(
        [
            float(low[f * GRID_HOP : f * GRID_HOP + n].mean()) if f * GRID_HOP < low.size else 0.0
            for f in frames
        ]
    )


def _ternary(env: np.ndarray, periods: np.ndarray) -> bool:
    """Whether onsets between the beats fall at thirds rather than halves of the beat."""
    p = float(np.median(periods))
    acf = _acf(env, int(p) + 2)
    lags = np.arange(acf.size)
    third = float(np.interp(p / 3, lags, acf)) + float(np.interp(2 * p / 3, lags, acf))
    half = 2 * float(np.interp(p / 2, lags, acf))
    return third > 1.3 * half and third > 0.2


MIN_SPAN_BEATS = 12  # a tempo must hold this many beats to be a tempo of its own


def _spans(times: np.ndarray) -> tuple[TempoSpan, ...]:
    """Stretches of steady tempo: a new one where the beat period moves by over 6 % and holds
    for :data:`MIN_SPAN_BEATS` beats; a shorter stretch joins the one before it."""
    if times.size < 3:
        return ()
    ibi = np.diff(times)
    smooth = median_filter(ibi, size=9, mode="nearest")
    # runs of beats whose smoothed period stays within 6 % of the run's median
    bounds = [0]
    run: list[float] = [float(smooth[0])]
    for i in range(1, smooth.size):
        if abs(math.log(smooth[i] / float(np.median(run)))) > math.log(1.06):
            bounds.append(i)
            run = [float(smooth[i])]
        else:
            run.append(float(smooth[i]))
    bounds.append(smooth.size)
    merged = [bounds[0]]
    for b, nxt in itertools.pairwise(bounds[1:]):  # keep a boundary only before a long run
        if nxt - b >= MIN_SPAN_BEATS and b - merged[-1] >= MIN_SPAN_BEATS:
            merged.append(b)
    merged.append(smooth.size)
    spans: list[TempoSpan] = []
    first: list[int] = []
    for a, b in itertools.pairwise(merged):
        bpm = _rate(times[a : b + 1])
        if spans and abs(math.log(bpm / spans[-1].bpm)) <= math.log(1.06):
            spans.pop()  # the same tempo on both sides: one span
            a = first.pop()
            bpm = _rate(times[a : b + 1])
        spans.append(TempoSpan(round(float(times[a]), 3), round(float(times[b]), 3), bpm))
        first.append(a)
    return tuple(spans)


def _rate(times: np.ndarray) -> float:
    """Beats per minute of evenly spaced beat times: the least-squares slope, so the frame
    grid's rounding of each beat averages out (a median gap would keep it)."""
    if times.size < 3:
        return round(60.0 / float(np.median(np.diff(times))), 2)
    slope = float(np.polyfit(np.arange(times.size), times, 1)[0])
    return round(60.0 / slope, 2)
