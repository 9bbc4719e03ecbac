"""The track's form: sections on bar lines, repeat labels and, where the evidence allows, a
function for each (intro, verse, chorus, bridge, breakdown, build-up, drop, outro).

Everything is decided on bars. The bar lines are the beat grid's downbeats; a track without a
grid gets bars of its own from the periodicity of its level (:func:`onset_bars`). Each bar is
described by the shared spectrum of the track (:mod:`engine.analysis.frames`): its pitch-class
distribution (treble and bass), its timbre (MFCCs without the level), its level and kick-band
level, and how much those move inside the bar (density, drums).

1. **Boundaries.** At every bar line, the features of the bars before it are compared with the
   bars after it, over 2, 4 and 8 bars; chords and bass are compared only over 4 bars or more
   (a phrase holds a whole progression, so a verse that cycles through four chords does not
   look like four sections). Each feature group is measured in its own unit (dB, distribution
   distance), so a loop that never changes stays one section however small its differences
   are. Bar lines whose novelty is a local peak over :data:`BOUNDARY_THRESHOLD` become
   boundaries one at a time, the strongest first, at least :data:`MIN_SECTION_BARS` apart;
   after each, the windows stop at it, so a big change (into silence, say) does not hide
   the smaller ones near it. Each moves (up to :data:`REFINE_BARS`) to where the change over
   1 and 2 bars is sharpest.
2. **Labels.** Two sections are the same material when their bars, aligned from their starts,
   are alike (:data:`SAME_THRESHOLD`); average-linkage clustering gives the letters, in order
   of first appearance.
3. **Functions.** The most repeated loud label is the chorus; another repeated label before
   it is the verse; a first or last section heard once and quieter or without drums is the
   intro or outro; a section whose level and kick band drop is a breakdown; a section that
   rises into a loud one with drums is a build-up, and that one a drop; a section heard once
   between choruses is the bridge.

The constants were chosen on the ``train`` renders of ``bench/form.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.analysis.frames import TrackFrames, beat_sync
from engine.types import BeatGrid, Section

MIN_SECTION_BARS = 4  # the shortest section between two others (a 4-bar build-up)
MIN_EDGE_BARS = 2  # the shortest first or last section (a 2-bar intro)
WINDOWS_BARS = (2, 4, 8)  # the spans compared on each side of a bar line
FINE_WINDOWS_BARS = (1, 2)  # the spans that place a boundary on its bar line
REFINE_BARS = 2  # how far the fine spans may move a boundary
PHRASE_BARS = 4  # chords (and the bass) are compared over spans this long (a progression)
BOUNDARY_THRESHOLD = 1.0  # novelty (in the feature units below) a boundary must reach
SAME_THRESHOLD = 0.9  # aligned bar distance under which two sections are the same material
LEVEL_UNIT_DB = 4.0  # a level difference of this many dB counts 1
LEVEL_FLOOR_DB = 60.0  # levels further than this below the loudest bar count as this far
TIMBRE_UNIT = 6.0  # an MFCC distance (c1..c12) of this counts 1
HARMONY_UNIT = 0.25  # an L1 distance of pitch-class distributions of this counts 1
QUIET_DB = 3.0  # an intro/outro/breakdown is this much below the track's median level
SILENT_DB = 50.0  # a section this far below the loudest is silence: it gets no function
DROP_LOW_DB = 6.0  # a breakdown's kick band is this much below the track's median
RISE_DB = 3.0  # a build-up's level rises by this much from its first to its last bar
PLACES = ("intro", "outro", "bridge")  # functions that come from where a section is
FALLBACK_BAR_S = 2.0  # the bar length of a track with no periodicity at all
MIN_BARS_S = (1.2, 4.8)  # the bar lengths the onset grid looks for


def track_form(
    frames: TrackFrames, *, duration_s: float, grid: BeatGrid | None = None
) -> tuple[Section, ...]:
    """The sections of a track.

    Args:
        frames: the track's spectrum (:func:`engine.analysis.frames.track_frames`).
        duration_s: the track's duration in seconds.
        grid: the beat grid; its downbeats are the bar lines (own bars without it).

    Returns:
        Sections covering ``[0, duration_s)`` in time order (one section for a track too
        short or too uniform to have a form; none for an empty track).
    """
    if duration_s <= 0:
        return ()
    bars = bar_lines(frames, duration_s=duration_s, grid=grid)
    feats = bar_features(frames, bars)
    n = feats.n
    cuts = boundaries(feats) if n >= 2 * MIN_EDGE_BARS else []
    nov = novelty(feats, cuts=cuts) if n >= 2 else np.zeros(max(n, 1))
    edges = [0, *cuts, n]
    labels = label_sections(feats, edges)
    functions = section_functions(feats, edges, labels)
    out = []
    for k in range(len(edges) - 1):
        start = 0.0 if k == 0 else float(bars[edges[k]])
        end = duration_s if k == len(edges) - 2 else float(bars[edges[k + 1]])
        conf = 1.0 if k == 0 else min(1.0, float(nov[edges[k]]) / (2 * BOUNDARY_THRESHOLD))
        out.append(
            Section(
                start_s=round(start, 4),
                end_s=round(end, 4),
                label=labels[k],
                function=functions[k],
                confidence=round(conf, 3),
            )
        )
    return tuple(out)


# --- bars ---------------------------------------------------------------------------------


def bar_lines(
    frames: TrackFrames, *, duration_s: float, grid: BeatGrid | None = None
) -> np.ndarray:
    """The bar lines the form is decided on: ``[bars + 1]`` times from 0 to ``duration_s``
    (the grid's downbeats, or :func:`onset_bars`), continued at the median bar length before
    the first downbeat and after the last one (a silent or beatless start or end still has
    bars); a piece shorter than half a bar at either end joins its neighbour."""
    downs = np.asarray(grid.downbeats if grid is not None else (), dtype=np.float64)
    downs = downs[(downs > 0) & (downs < duration_s)]
    if downs.size < 2:
        downs = onset_bars(frames, duration_s=duration_s)
    bar_s = float(np.median(np.diff(downs))) if downs.size >= 2 else FALLBACK_BAR_S
    if downs.size:
        before = downs[0] - bar_s * np.arange(int(downs[0] // bar_s), 0, -1)
        after = downs[-1] + bar_s * np.arange(1, int((duration_s - downs[-1]) // bar_s) + 1)
        downs = np.concatenate([before, downs, after])
        downs = downs[(downs > 0) & (downs < duration_s)]
    if downs.size and downs[0] < bar_s / 2:
        downs = downs[1:]
    if downs.size and duration_s - downs[-1] < bar_s / 2:
        downs = downs[:-1]
    return np.concatenate([[0.0], downs, [duration_s]])


def onset_bars(frames: TrackFrames, *, duration_s: float) -> np.ndarray:
    """Bar lines of a track without a beat grid: the period (in :data:`MIN_BARS_S`) and phase
    that best explain the rises of its level; :data:`FALLBACK_BAR_S` without periodicity."""
    hop_s = frames.hop / frames.sr
    rise = np.maximum(np.diff(np.maximum(frames.rms, frames.low), prepend=frames.rms[:1]), 0.0)
    lo, hi = (round(s / hop_s) for s in MIN_BARS_S)
    period_s = FALLBACK_BAR_S
    phase_s = 0.0
    if rise.size > 2 * hi and float(rise.std()) > 0:
        x = rise - rise.mean()
        acf = np.correlate(x, x, mode="full")[x.size - 1 :] / (float(x @ x) + 1e-12)
        lag = lo + int(np.argmax(acf[lo : hi + 1]))
        if acf[lag] > 0.1:
            period_s = lag * hop_s
            phases = [float(rise[p::lag].mean()) for p in range(lag)]
            phase_s = float(np.argmax(phases)) * hop_s + frames.times[0] - hop_s / 2
    lines = np.arange(phase_s % period_s, duration_s, period_s)
    return lines[lines > 1e-3]


@dataclass(frozen=True)
class BarFeatures:
    """Per-bar features in their own units, one row a bar (:func:`bar_features`).

    Attributes:
        harmony: pitch-class distributions ``[bars, 24]`` (treble then bass), each half
            summing to 1 (0 in silent bars).
        timbre: MFCCs c1..c12 ``[bars, 12]`` (0 in silent bars).
        level: level in dB ``[bars]``, floored :data:`LEVEL_FLOOR_DB` under the loudest bar.
        low: kick-band level in dB ``[bars]``, floored the same way.
        motion: mean absolute frame-to-frame change of level and kick band, dB ``[bars, 2]``.
    """

    harmony: np.ndarray
    timbre: np.ndarray
    level: np.ndarray
    low: np.ndarray
    motion: np.ndarray

    @property
    def n(self) -> int:
        return int(self.level.size)

    def scaled(self) -> np.ndarray:
        """All features in units where a difference of 1 is a clear change ``[bars, D]``."""
        return np.concatenate(
            [
                self.harmony / HARMONY_UNIT,
                self.timbre / TIMBRE_UNIT,
                self.level[:, None] / LEVEL_UNIT_DB,
                self.low[:, None] / LEVEL_UNIT_DB,
                self.motion / LEVEL_UNIT_DB,
            ],
            axis=1,
        )


def bar_features(frames: TrackFrames, bars: np.ndarray) -> BarFeatures:
    """The features of the bars between consecutive ``bars`` lines."""
    t = frames.times

    def dist(x: np.ndarray) -> np.ndarray:
        x = np.maximum(beat_sync(x, t, bars), 0.0)
        return (x / (x.sum(axis=0, keepdims=True) + 1e-9)).T

    harmony = np.concatenate([dist(frames.chroma), dist(frames.bass)], axis=1)
    timbre = beat_sync(frames.timbre[1:], t, bars).T
    level = beat_sync(frames.rms[None], t, bars)[0]
    low = beat_sync(frames.low[None], t, bars)[0]
    moves = np.abs(np.diff(np.stack([frames.rms, frames.low]), axis=1, prepend=0.0))
    moves[:, :1] = 0.0
    # silence has no timbre or harmony to speak of, and below the floor no level either
    floor = float(np.max(level, initial=-120.0)) - LEVEL_FLOOR_DB
    quiet = level < floor
    harmony[quiet] = 0.0
    timbre[quiet] = 0.0
    return BarFeatures(
        harmony=harmony,
        timbre=timbre,
        level=np.maximum(level, floor),
        low=np.maximum(low, floor),
        motion=beat_sync(moves, t, bars).T,
    )


# --- boundaries ---------------------------------------------------------------------------


def _group_distance(
    a: np.ndarray, b: np.ndarray, *, phrase: bool | np.ndarray = True
) -> np.ndarray:
    """Distance of mean feature rows (:meth:`BarFeatures.scaled`, ``[..., D]``): each group's
    own distance, in its unit, combined as a root sum of squares (harmony: the mean L1
    distance of the two distributions). Where ``phrase`` is false (spans shorter than a
    progression), the features that follow the chords (harmony, and the kick band, where the
    bass plays) are left out.

    Returns:
        ``[...]``.
    """
    nh, nt = 24, 36
    diff = a[..., nt:] - b[..., nt:]  # level, low, level motion, low motion
    phrase = np.asarray(phrase, dtype=bool)
    harmony = np.where(phrase, np.abs(a[..., :nh] - b[..., :nh]).sum(axis=-1) / 2, 0.0)
    rest = diff[..., 0] ** 2 + diff[..., 2] ** 2
    rest = rest + np.where(phrase, diff[..., 1] ** 2 + diff[..., 3] ** 2, 0.0)
    timbre = ((a[..., nh:nt] - b[..., nh:nt]) ** 2).sum(axis=-1)
    return np.sqrt(harmony**2 + timbre + rest)


def novelty(
    feats: BarFeatures, windows: Sequence[int] = WINDOWS_BARS, *, cuts: Sequence[int] = ()
) -> np.ndarray:
    """``[bars]``: how much the track changes at each bar line (entry 0 is 0), the mean over
    ``windows`` of the distance between the bars before and after it. A window stops at the
    ends and at the bar lines in ``cuts`` (boundaries already chosen), so a strong change
    does not spill into the novelty of its neighbours."""
    x = feats.scaled()
    n = x.shape[0]
    if n < 2:
        return np.zeros(n)
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    edges = np.array(sorted({0, n, *cuts}))
    b = np.arange(1, n)
    prev = edges[np.searchsorted(edges, b, side="left") - 1]
    nxt = edges[np.searchsorted(edges, b, side="right")]
    total = np.zeros(n - 1)
    for w in windows:
        kl = np.maximum(1, np.minimum(w, b - prev))
        kr = np.maximum(1, np.minimum(w, nxt - b))
        left = (csum[b] - csum[b - kl]) / kl[:, None]
        right = (csum[b + kr] - csum[b]) / kr[:, None]
        total += _group_distance(left, right, phrase=np.minimum(kl, kr) >= PHRASE_BARS)
    return np.concatenate([[0.0], total / len(windows)])


def boundaries(feats: BarFeatures) -> list[int]:
    """The bar indices where sections start (0 excluded), in order. One at a time, the
    strongest: the highest local peak of the novelty (windows stopping at the boundaries
    chosen so far) over :data:`BOUNDARY_THRESHOLD`, at least :data:`MIN_SECTION_BARS` from
    the others (:data:`MIN_EDGE_BARS` from the ends), moved (up to :data:`REFINE_BARS`) to
    where the change over 1 and 2 bars is sharpest."""
    n = feats.n
    chosen: list[int] = []

    def free(i: int) -> bool:
        inside = MIN_EDGE_BARS <= i <= n - MIN_EDGE_BARS
        return inside and all(abs(i - c) >= MIN_SECTION_BARS for c in chosen)

    while True:
        nov = novelty(feats, cuts=chosen)
        peaks = [
            i
            for i in range(1, n)
            if free(i)
            and nov[i] >= BOUNDARY_THRESHOLD
            and nov[i] >= nov[i - 1]
            and (i + 1 >= n or nov[i] >= nov[i + 1])
        ]
        if not peaks:
            return sorted(chosen)
        best = max(peaks, key=lambda i: nov[i])
        fine = novelty(feats, FINE_WINDOWS_BARS, cuts=chosen)
        near = [i for i in range(best - REFINE_BARS, best + REFINE_BARS + 1) if free(i)]
        chosen.append(max(near, key=lambda i: fine[i] + nov[i]))


# --- labels -------------------------------------------------------------------------------


def _section_distance(x: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float:
    """How unlike two sections are: their bars aligned from the start (over the shorter),
    each pair's distance, averaged; and never less than their means' distance."""
    la, lb = a[1] - a[0], b[1] - b[0]
    m = min(la, lb)
    pairs = _group_distance(x[a[0] : a[0] + m], x[b[0] : b[0] + m])
    means = float(_group_distance(x[a[0] : a[1]].mean(axis=0), x[b[0] : b[1]].mean(axis=0)))
    aligned = float(np.mean(pairs)) if m else means
    # the same material played half as long or twice as long is still the same material
    return max(means, min(aligned, 1.5 * means + 0.25))


def label_sections(feats: BarFeatures, edges: Sequence[int]) -> list[str]:
    """One letter per section (``edges``: bar indices of the section starts and the end),
    the same letter for the same material, in order of first appearance."""
    k = len(edges) - 1
    if k <= 0:
        return []
    x = feats.scaled()
    spans = [(edges[i], edges[i + 1]) for i in range(k)]
    d = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            d[i, j] = d[j, i] = _section_distance(x, spans[i], spans[j])
    clusters = [[i] for i in range(k)]
    while len(clusters) > 1:
        best, pair = np.inf, (0, 0)
        for p in range(len(clusters)):
            for q in range(p + 1, len(clusters)):
                v = float(np.mean([d[i, j] for i in clusters[p] for j in clusters[q]]))
                if v < best:
                    best, pair = v, (p, q)
        if best > SAME_THRESHOLD:
            break
        p, q = pair
        clusters[p] = clusters[p] + clusters.pop(q)
    of = {i: c for c, members in enumerate(clusters) for i in members}
    letters: dict[int, str] = {}
    out = []
    for i in range(k):
        if of[i] not in letters:
            letters[of[i]] = _letter(len(letters))
        out.append(letters[of[i]])
    return out


def _letter(i: int) -> str:
    """``A`` .. ``Z``, then ``A1``, ``B1`` ..."""
    return chr(ord("A") + i % 26) + (str(i // 26) if i >= 26 else "")


# --- functions ----------------------------------------------------------------------------


def section_functions(
    feats: BarFeatures, edges: Sequence[int], labels: Sequence[str]
) -> list[str | None]:
    """A function per section where the evidence allows it (see the module doc), else None."""
    k = len(labels)
    out: list[str | None] = [None] * k
    if k < 2:
        return out
    spans = [(edges[i], edges[i + 1]) for i in range(k)]
    level = np.array([float(np.mean(feats.level[a:b])) for a, b in spans])
    low = np.array([float(np.mean(feats.low[a:b])) for a, b in spans])
    kick = np.array([float(np.mean(feats.motion[a:b, 1])) for a, b in spans])
    weights = np.array([b - a for a, b in spans], dtype=float)
    med_level = float(np.median(np.repeat(level, weights.astype(int))))
    med_low = float(np.median(np.repeat(low, weights.astype(int))))
    med_kick = float(np.median(np.repeat(kick, weights.astype(int))))
    count = {lab: labels.count(lab) for lab in labels}

    silent = level < float(np.max(level)) - SILENT_DB

    def sparse(i: int) -> bool:
        return level[i] <= med_level - QUIET_DB or kick[i] < 0.5 * med_kick

    # chorus: the repeated label, loudest on average; verse: another repeated label before it
    repeated = [lab for lab in dict.fromkeys(labels) if count[lab] >= 2]
    mean_of = {
        lab: float(np.mean([level[i] for i in range(k) if labels[i] == lab])) for lab in repeated
    }
    chorus = max(repeated, key=lambda lab: (count[lab], mean_of[lab])) if repeated else None
    if chorus is not None and len(repeated) >= 2:
        loud = max(repeated, key=lambda lab: mean_of[lab])
        if mean_of[loud] > mean_of[chorus] + 1.0:
            chorus = loud
    if chorus is not None and mean_of[chorus] >= med_level - 1.0:
        first = labels.index(chorus)
        for i in range(k):
            if labels[i] == chorus:
                out[i] = "chorus"
        verses = [lab for lab in repeated if lab != chorus and labels.index(lab) < first]
        if verses:
            verse = max(verses, key=lambda lab: count[lab])
            for i in range(k):
                if labels[i] == verse:
                    out[i] = "verse"
        # bridge: heard once, after the first chorus, before the last section
        for i in range(first + 1, k - 1):
            if out[i] is None and count[labels[i]] == 1:
                out[i] = "bridge"
    # breakdown, build-up, drop
    for i in range(1, k - 1):
        if out[i] is not None:
            continue
        a, b = spans[i]
        if low[i] <= med_low - DROP_LOW_DB and level[i] <= med_level - QUIET_DB:
            out[i] = "breakdown"
        rises = b - a >= 2 and feats.level[b - 1] - feats.level[a] >= RISE_DB
        nxt = i + 1
        if rises and level[nxt] >= med_level and kick[nxt] >= med_kick and out[nxt] is None:
            out[i] = "build-up"
            out[nxt] = "drop"
    for i in range(1, k):
        after_break = out[i - 1] in ("breakdown", "build-up")
        if out[i] is None and after_break and low[i] >= med_low and level[i] >= med_level:
            out[i] = "drop"
    # material that returns keeps its function (intro, outro and bridge are places, not
    # material: they are not carried over)
    for lab in repeated:
        found = [out[i] for i in range(k) if labels[i] == lab and out[i] not in PLACES]
        if found and found[0] is not None:
            for i in range(k):
                if labels[i] == lab and out[i] not in PLACES:
                    out[i] = found[0]
    # intro and outro: first / last, heard once, sparse
    if out[0] is None and count[labels[0]] <= 2 and sparse(0):
        out[0] = "intro"
    if out[-1] is None and count[labels[-1]] <= 2 and sparse(k - 1):
        out[-1] = "outro"
    return [None if silent[i] else f for i, f in enumerate(out)]
