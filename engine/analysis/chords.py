"""Chords on the beat grid: Harte labels with a confidence, and Roman numerals against a key.

:func:`track_chords` reads the track's shared spectrum (:mod:`engine.analysis.frames`: the
pitch classes of the accompaniment's register, 200-1500 Hz, and of the bass below it) and
decides one chord per beat:

1. both are averaged over each beat (:func:`beat_sync`); without a beat grid over fixed
   :data:`STEP_S` steps;
2. each beat scores every chord of :data:`QUALITIES` on every root against harmonic templates
   (a chord note's overtones fold onto the fifth and third above it, so a triad played on a
   piano is not mistaken for the seventh chord its overtones suggest), plus how much of the
   bass sits on the chord's root and tones; ``N`` (no chord) scores the median chord's score
   plus a margin, so a beat where no chord stands out from the rest (drums, noise: flat pitch
   classes) is ``N``, and so is a silent one;
3. a hidden Markov model over the 12 x |QUALITIES| + 1 states with one penalty per change
   inside a bar (none on a bar line) is decoded with Viterbi: changes land on beats, on bars
   where the evidence allows; each chord's confidence is its mean posterior probability over
   its beats (forward-backward).

:func:`roman` and :func:`progression` name chords against the track's key (``i-VI-III-VII``
in A minor), the degree counted on the key's own scale (natural minor for minor keys).

The constants were chosen on the ``train`` renders of ``bench/chords.py`` together with a
development set of real recordings (the second song of each Beatles album, with its Isophonics
annotation); the ``test`` renders and the real recordings it reports (the first, third and
fourth songs of each album, ``../shared/realaudio2``) were only measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.analysis.frames import TrackFrames, beat_sync
from engine.labels import ENHARMONIC, KEYS, PITCH_CLASSES, parse_key
from engine.types import BeatGrid, ChordSpan

QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6),
    "sus4": (0, 5, 7),
    "sus2": (0, 2, 7),
}
"""The chord qualities recognised (Harte shorthands) and their intervals above the root."""

NO_CHORD = "N"
STEP_S = 0.5  # decision unit without a beat grid
HARMONIC_DECAY = 0.3  # weight of each further overtone in a template (1, 0.3, 0.09)
N_HARMONICS = 3
BASS_WEIGHT = 0.4  # bass share on the root adds this much to a chord's score
BASS_TONE_WEIGHT = 0.25  # bass share on the chord's other tones
NO_CHORD_MARGIN = 0.25  # a beat whose best chord beats the median chord by less than this is N
SILENCE_DB = 45.0  # beats this far below the track's loudest are N
QUALITY_PRIOR: dict[str, float] = {
    "maj": 0.0,
    "min": 0.0,
    "7": -0.05,
    "maj7": -0.08,
    "min7": -0.04,
    "dim": -0.11,
    "sus4": -0.15,
    "sus2": -0.12,
}
"""Score offsets per quality (triads first where the evidence is even)."""
SHARPNESS = 20.0  # scores to log-likelihoods: the emission is exp(SHARPNESS x score)
CHANGE_PENALTY = 3.0  # log-probability cost of a change on a beat inside a bar
BAR_CHANGE_PENALTY = 0.0  # ... and on a bar line

_HARMONIC_OFFSETS = (0, 7, 4, 10)  # pitch classes of overtones 2-3, 3, 5, 7 (octaves fold)


def chord_names() -> tuple[str, ...]:
    """The decoder's states: ``N``, then every root of :data:`PITCH_CLASSES` in each quality."""
    return (NO_CHORD, *(f"{root}:{q}" for q in QUALITIES for root in PITCH_CLASSES))


def _templates() -> np.ndarray:
    """``[chords, 12]`` unit-norm harmonic templates in :func:`chord_names` order (without N)."""
    out = []
    for intervals in QUALITIES.values():
        base = np.zeros(12)
        for iv in intervals:
            for h, off in enumerate(_HARMONIC_OFFSETS[:N_HARMONICS]):
                base[(iv + off) % 12] += HARMONIC_DECAY**h
        for root in range(12):
            out.append(np.roll(base, root))
    t = np.array(out)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def _tone_masks() -> tuple[np.ndarray, np.ndarray]:
    """``[chords, 12]`` one-hot roots and the chords' other tones (without N)."""
    roots, tones = [], []
    for intervals in QUALITIES.values():
        for root in range(12):
            r = np.zeros(12)
            r[root] = 1.0
            t = np.zeros(12)
            t[[(root + iv) % 12 for iv in intervals[1:]]] = 1.0
            roots.append(r)
            tones.append(t)
    return np.array(roots), np.array(tones)


def chord_scores(
    chroma: np.ndarray,
    bass: np.ndarray,
    level_db: np.ndarray,
    lone_bass: np.ndarray | None = None,
) -> np.ndarray:
    """How well each chord explains each unit: ``[1 + chords, units]``, row 0 being ``N``.

    Args:
        chroma: treble pitch classes ``[12, units]``.
        bass: bass pitch classes ``[12, units]``.
        level_db: each unit's level in dB ``[units]``.
        lone_bass: units where a bass line sounds alone ``[units]``
            (:func:`engine.analysis.frames.lone_bass`): ``N`` there, as in silence; the
            overtones of one low note are no chord.
    """
    floor = chroma.min(axis=0, keepdims=True)
    c = chroma - floor  # the broadband floor (drums, noise) is no pitch class
    c = c / (np.linalg.norm(c, axis=0, keepdims=True) + 1e-9)
    b = bass - bass.min(axis=0, keepdims=True)
    b = b / (b.sum(axis=0, keepdims=True) + 1e-9)
    roots, tones = _tone_masks()
    prior = np.repeat([QUALITY_PRIOR[q] for q in QUALITIES], 12)[:, None]
    s = _templates() @ c + BASS_WEIGHT * (roots @ b) + BASS_TONE_WEIGHT * (tones @ b) + prior
    n = np.median(s, axis=0, keepdims=True) + NO_CHORD_MARGIN
    quiet = level_db < (float(level_db.max(initial=-120.0)) - SILENCE_DB)
    if lone_bass is not None:
        quiet = quiet | lone_bass
    s[:, quiet] = 0.0
    n[:, quiet] = 1.0
    return np.concatenate([n, s], axis=0)


def decode(scores: np.ndarray, on_bar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi path through ``scores`` (``[states, units]``) with one penalty per change
    (:data:`BAR_CHANGE_PENALTY` into a unit that starts a bar, else :data:`CHANGE_PENALTY`),
    and each unit's posterior probability of its path state (forward-backward).

    Returns:
        ``(states [units], posterior [units])``.
    """
    loglik = SHARPNESS * scores
    k, t = loglik.shape
    if t == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    pen = np.where(on_bar, BAR_CHANGE_PENALTY, CHANGE_PENALTY)
    delta = loglik[:, 0].copy()
    back = np.zeros((t, k), dtype=np.int32)
    for i in range(1, t):
        best = int(np.argmax(delta))
        switch = delta[best] - pen[i]
        stay = delta >= switch
        back[i] = np.where(stay, np.arange(k), best)
        delta = np.where(stay, delta, switch) + loglik[:, i]
    path = np.zeros(t, dtype=int)
    path[-1] = int(np.argmax(delta))
    for i in range(t - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path, _posterior(loglik, pen)[path, np.arange(t)]


def _posterior(loglik: np.ndarray, pen: np.ndarray) -> np.ndarray:
    """``[states, units]`` state posteriors of the change-penalty HMM (scaled forward-backward;
    a change into unit i weighs ``exp(-pen[i])`` against staying, for each other state: the
    transitions the Viterbi path is decoded with, so a path's chord and its confidence agree)."""
    k, t = loglik.shape
    e = np.exp(loglik - loglik.max(axis=0, keepdims=True))
    p_switch = np.exp(-pen)
    alpha = np.zeros((k, t))
    a = e[:, 0] / e[:, 0].sum()
    alpha[:, 0] = a
    for i in range(1, t):
        a = e[:, i] * (a + p_switch[i] * (1.0 - a))
        a /= a.sum()
        alpha[:, i] = a
    beta = np.ones(k)
    post = np.zeros((k, t))
    post[:, -1] = alpha[:, -1]
    for i in range(t - 1, 0, -1):
        m = e[:, i] * beta
        beta = m + p_switch[i] * (m.sum() - m)
        beta /= beta.sum()
        p = alpha[:, i - 1] * beta
        post[:, i - 1] = p / p.sum()
    return post


def _units(grid: BeatGrid | None, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Decision units' bounds ``[units + 1]`` (beats, else fixed steps) and whether each unit
    starts a bar ``[units]``."""
    beats = [b for b in (grid.beats if grid else ()) if 0.0 < b.time_s < duration_s]
    if len(beats) >= 2:
        bounds = np.array([0.0, *(b.time_s for b in beats), duration_s])
        on_bar = np.array([True, *(b.position == 1 for b in beats)])
        return bounds, on_bar
    n = max(1, int(np.ceil(duration_s / STEP_S)))
    bounds = np.minimum(np.arange(n + 1) * STEP_S, duration_s)
    return bounds, np.ones(n, dtype=bool)


def track_chords(
    frames: TrackFrames, grid: BeatGrid | None = None, *, duration_s: float
) -> tuple[ChordSpan, ...]:
    """The chords of a whole track, one span per chord, covering ``[0, duration_s)``.

    Args:
        frames: the track's spectrum (:func:`engine.analysis.frames.track_frames`).
        grid: its beat grid: chords change on its beats (on bar lines where the evidence
            allows); without beats, on :data:`STEP_S` steps.
        duration_s: the track's duration in seconds.

    Returns:
        Chords in time order, neighbours always different, in Harte syntax (``N`` for none).
    """
    if duration_s <= 0:
        return ()
    bounds, on_bar = _units(grid, duration_s)
    chroma = beat_sync(frames.harmony, frames.times, bounds)
    bass = beat_sync(frames.bass, frames.times, bounds)
    level = beat_sync(frames.rms[None, :], frames.times, bounds)[0]
    alone = None
    if frames.lone_bass.size == frames.n_frames and frames.lone_bass.any():
        alone = beat_sync(frames.lone_bass[None, :].astype(np.float32), frames.times, bounds)[0]
        alone = alone >= 0.5
    path, post = decode(chord_scores(chroma, bass, level, alone), on_bar)
    names = chord_names()
    spans: list[ChordSpan] = []
    start = 0
    for i in range(1, path.size + 1):
        if i == path.size or path[i] != path[start]:
            spans.append(
                ChordSpan(
                    start_s=round(float(bounds[start]), 4),
                    end_s=round(float(bounds[i]), 4),
                    chord=names[path[start]],
                    confidence=round(float(np.clip(post[start:i].mean(), 0.0, 1.0)), 3),
                )
            )
            start = i
    return tuple(spans)


def chords_between(
    chords: Sequence[ChordSpan], start_s: float, end_s: float
) -> tuple[ChordSpan, ...]:
    """The chords sounding in ``[start_s, end_s)``, clipped to it."""
    out = []
    for c in chords:
        a, b = max(c.start_s, start_s), min(c.end_s, end_s)
        if b - a > 1e-6:
            out.append(ChordSpan(round(a, 4), round(b, 4), c.chord, c.confidence))
    return tuple(out)


# The home key from the chords (:func:`home_key`): how much each chord, by its degree above a
# key's tonic (rows 0-11) and its quality (columns in :data:`QUALITIES` order: maj, min, 7,
# maj7, min7, dim, sus4, sus2), says "this is the key". Printed by `python
# bench/key_accuracy.py --fit-home BEATLES_DIR GTZAN_DIR`: a 24-key logistic regression on each
# track's chord time per degree and quality, pulled towards tables written from functional
# harmony (the tonic triad most, the subdominant and dominant next, the relative minor less;
# in minor the dominant may be major), fitted on bench/key_accuracy.py's train renders and the
# development halves bench/real.py uses (the odd-numbered Beatles songs, GTZAN clips 0-4),
# scaled so that the major tonic triad weighs 1 (the minor one 0.99). What the fit changed:
# in major the tonic's sevenths and suspended chords weigh less (I7 0.8 -> 0.46), the tonic
# minor, iv and VI a little (0.19, 0.10, 0.09); in minor the tonic's major triad and dominant
# seventh join (0.35, 0.36: a blues over major chords is annotated minor on GTZAN) and the flat
# sixth and seventh weigh less (0.43, 0.34). A few chords off the key's degrees weigh a little
# below 0, against that key. The held-out halves were only measured.
HOME_MAJOR = np.array(
    [
        [1.00, 0.19, 0.46, 0.62, 0.01, 0.00, 0.40, 0.40],  # 0
        [-0.04, -0.04, -0.02, 0.00, 0.03, 0.00, 0.00, 0.00],  # 1
        [-0.06, 0.26, 0.00, 0.02, 0.24, 0.00, 0.00, 0.00],  # 2
        [-0.03, 0.01, -0.02, -0.02, -0.01, 0.00, 0.00, 0.00],  # 3
        [-0.01, 0.22, -0.06, -0.02, -0.02, 0.00, 0.00, 0.00],  # 4
        [0.54, 0.10, 0.32, 0.44, -0.02, -0.03, 0.00, 0.00],  # 5
        [-0.01, -0.05, 0.08, -0.02, 0.00, 0.02, 0.00, 0.00],  # 6
        [0.52, -0.04, 0.43, -0.05, -0.05, 0.00, 0.00, 0.01],  # 7
        [-0.04, -0.03, -0.02, -0.03, -0.01, 0.00, 0.00, 0.00],  # 8
        [0.09, 0.49, -0.02, -0.04, 0.32, 0.02, 0.00, 0.00],  # 9
        [0.12, -0.01, -0.06, 0.01, -0.02, 0.03, 0.00, 0.00],  # 10
        [0.01, -0.07, 0.00, -0.03, 0.03, -0.02, 0.00, 0.01],  # 11
    ]
)
HOME_MINOR = np.array(
    [
        [0.35, 0.99, 0.36, 0.04, 0.80, 0.00, 0.00, 0.01],  # 0
        [0.00, -0.04, 0.12, 0.04, 0.02, 0.00, 0.00, 0.00],  # 1
        [-0.06, 0.01, -0.04, 0.01, -0.10, 0.24, 0.00, 0.01],  # 2
        [0.27, -0.01, 0.04, 0.06, 0.02, 0.00, 0.00, 0.00],  # 3
        [-0.04, -0.07, -0.02, -0.01, -0.01, 0.00, 0.00, 0.00],  # 4
        [0.16, 0.50, 0.13, -0.06, -0.01, 0.00, 0.00, 0.00],  # 5
        [-0.06, 0.02, -0.02, 0.00, -0.01, 0.00, 0.00, 0.00],  # 6
        [0.36, 0.19, 0.40, 0.03, 0.07, 0.00, 0.00, -0.01],  # 7
        [0.43, 0.00, -0.02, 0.05, 0.00, 0.00, 0.00, 0.00],  # 8
        [-0.04, 0.00, -0.03, -0.02, 0.03, -0.01, 0.00, 0.00],  # 9
        [0.34, -0.04, 0.10, 0.04, -0.03, 0.00, 0.00, -0.01],  # 10
        [0.00, -0.04, 0.02, 0.06, -0.01, 0.00, 0.00, 0.00],  # 11
    ]
)
HOME_MIN_CHORDS = 0.5  # the chords (not N) must fill this share of the time to say a home key
# Chord-weighted seconds a change of home key must earn. 8 with the hand-written tables; scaled
# with the fitted ones, whose subdominant and dominant weigh about three quarters as much (0.53
# against 0.7). The development halves' keys are the same from 6 to 8 (one song moves at 5); at
# 8 a 13 s stretch of I-IV-V-I in D major after A minor no longer earned its change.
HOME_CHANGE_PENALTY = 6.0
# A song opens and closes on its tonic more often than on any other chord (a fade-out aside):
# its first and last chords count this many seconds more. Chosen on the Beatles dev songs
# (with the home key's say following its lead: 0: 0.868 MIREX, 2: 0.895, 4: 0.921, 8: 0.908;
# GTZAN clips 0-4 0.560 for all four).
CADENCE_S = 4.0


def _cadences(chords: Sequence[ChordSpan]) -> set[int]:
    """Indices of the chords that open and close the music: the first chord when the track
    opens without one (``N``: silence, a count-in), the last when it closes without one. An
    excerpt cut out of a song (a region chosen in a DAW, a 30 s clip) starts and stops inside
    chords that are where the cut fell, not cadences: the Beatles dev songs open with ``N`` in
    61 of 75 and close with it in 68, GTZAN's excerpts in 12 and 11 of 86."""
    voiced = [i for i, c in enumerate(chords) if c.chord != NO_CHORD]
    if not voiced:
        return set()
    out = set()
    if chords[0].chord == NO_CHORD:
        out.add(voiced[0])
    if chords[-1].chord == NO_CHORD:
        out.add(voiced[-1])
    return out


def voiced_seconds(chords: Sequence[ChordSpan]) -> float:
    """How long ``chords`` hold a chord (not ``N``), in seconds."""
    return sum(max(0.0, c.end_s - c.start_s) for c in chords if c.chord != NO_CHORD)


def _enough_chords(chords: Sequence[ChordSpan]) -> bool:
    """Whether chords fill at least :data:`HOME_MIN_CHORDS` of the spans' time."""
    total = sum(max(0.0, c.end_s - c.start_s) for c in chords)
    return total > 0 and voiced_seconds(chords) >= HOME_MIN_CHORDS * total


def _home_weights() -> np.ndarray:
    """:data:`HOME_MAJOR` and :data:`HOME_MINOR` as one array [2 modes, 12 degrees, qualities]."""
    return np.stack([HOME_MAJOR, HOME_MINOR])


def chord_seconds(chords: Sequence[ChordSpan]) -> list[tuple[int, int, int, float]]:
    """The voiced chords as ``(index, root pitch class, quality index in QUALITIES, seconds)``:
    what the home key weighs, the chords that open and close the music (:func:`_cadences`)
    counting :data:`CADENCE_S` seconds longer; ``N`` is left out."""
    names = list(QUALITIES)
    ends = _cadences(chords)
    out = []
    for i, c in enumerate(chords):
        parsed = parse_chord(c.chord)
        if parsed is None:
            continue
        root, quality = parsed
        seconds = max(0.0, c.end_s - c.start_s) + (CADENCE_S if i in ends else 0.0)
        out.append((i, root, names.index(quality), seconds))
    return out


def _key_support(chords: Sequence[ChordSpan]) -> np.ndarray:
    """How much each chord supports each key, ``[chords, 24]`` (keys in :data:`KEYS` order):
    its seconds (:func:`chord_seconds`) times its weight as a degree of that key (0 for
    ``N``)."""
    weights = _home_weights()
    out = np.zeros((len(chords), 24))
    for i, root, quality, seconds in chord_seconds(chords):
        degrees = (root - np.arange(12)) % 12  # the chord's degree above each tonic
        for m in range(2):
            out[i, 12 * m : 12 * m + 12] = seconds * weights[m, degrees, quality]
    return out


def home_key(chords: Sequence[ChordSpan]) -> str | None:
    """The key a stretch of chords supports best: each key scores its chords' durations
    weighted by :data:`HOME_MAJOR` / :data:`HOME_MINOR` by their degree and quality.

    Args:
        chords: spans in time order (:func:`track_chords`, or a part of them).

    Returns:
        The key name (``"E major"``), or None when chords fill less than
        :data:`HOME_MIN_CHORDS` of the spans' time (drums, speech, near-silence).
    """
    if not _enough_chords(chords):
        return None
    return KEYS[int(np.argmax(_key_support(chords).sum(axis=0)))]


def home_keys(
    chords: Sequence[ChordSpan],
) -> tuple[tuple[float, float, str | None, float], ...]:
    """The home key of each stretch of a track: ``(start_s, end_s, key, lead)`` spans tiling
    the chords' time, ``lead`` being how far the chords of the stretch support its key above
    any other, in chord-weighted seconds (0 without a key): a whole song's chords lead by tens
    of seconds, a 10 s selection's by a few or none.

    The key is decoded over the chords with the Viterbi algorithm: each chord supports each
    key by its duration times its weight as a degree of that key (:data:`HOME_MAJOR`,
    :data:`HOME_MINOR`), and a change of key costs :data:`HOME_CHANGE_PENALTY`. A bridge that
    leans on the subdominant for a few bars does not pay for two changes; a modulation that
    holds for half a minute does. Without enough chords (fewer than :data:`HOME_MIN_CHORDS`
    of the time) the one span has no key.

    On Beatles songs with Isophonics key annotations the home key reads the key better than
    pitch-class profiles (``bench/real.py --beatles``): real songs colour their melodies with
    a flat seventh or a minor third that a profile fitted on renders takes for another key,
    while their chords still circle the tonic.
    """
    if not chords:
        return ()
    if not _enough_chords(chords):
        return ((chords[0].start_s, chords[-1].end_s, None, 0.0),)
    support = _key_support(chords)
    n = len(chords)
    score = support[0].copy()
    back = np.zeros((n, 24), dtype=np.int64)
    for i in range(1, n):
        best = int(np.argmax(score))
        switch = score[best] - HOME_CHANGE_PENALTY
        stay = score >= switch
        back[i] = np.where(stay, np.arange(24), best)
        score = np.where(stay, score, switch) + support[i]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    spans: list[tuple[float, float, str | None, float]] = []
    first = 0
    for i in range(1, n + 1):
        if i == n or path[i] != path[first]:
            key = int(path[first])
            held = support[first:i].sum(axis=0)
            lead = float(held[key] - np.delete(held, key).max())
            spans.append((chords[first].start_s, chords[i - 1].end_s, KEYS[key], lead))
            first = i
    return tuple(spans)


# Roman numerals: the degree of each interval above the tonic on the key's scale, with the
# accidental that reaches it (major scale for major keys, natural minor for minor keys).
_DEGREES = {
    "major": ("I", "bII", "II", "bIII", "III", "IV", "#IV", "V", "bVI", "VI", "bVII", "VII"),
    "minor": ("I", "bII", "II", "III", "#III", "IV", "#IV", "V", "VI", "#VI", "VII", "#VII"),
}
_SUFFIX = {"maj": "", "min": "", "7": "7", "maj7": "maj7", "min7": "7", "dim": "°"}
_LOWER = frozenset({"min", "min7", "dim"})


def parse_chord(chord: str) -> tuple[int, str] | None:
    """``(root pitch class, quality)`` of a Harte label of :data:`QUALITIES` (None for ``N``).

    Raises:
        ValueError: naming the label when it is not ``N`` nor ``<root>:<quality>``.
    """
    if chord == NO_CHORD:
        return None
    root, _, quality = chord.partition(":")
    root = ENHARMONIC.get(root, root)
    pcs = {name: i for i, name in enumerate(PITCH_CLASSES)}
    if root not in pcs or quality not in QUALITIES:
        raise ValueError(
            f"chord {chord!r} is not 'N' nor '<root>:<quality>' with a root in "
            f"{PITCH_CLASSES} and a quality in {tuple(QUALITIES)}"
        )
    return pcs[root], quality


def roman(chord: str, key: str) -> str | None:
    """``chord`` as a Roman numeral in ``key`` (``"C:maj"`` in ``"A minor"`` is ``"III"``,
    ``"G:7"`` in ``"C major"`` is ``"V7"``); None for ``N``.

    Raises:
        ValueError: naming ``key`` when it is not a key name (``"A minor"``), or the chord.
    """
    tonic_mode = parse_key(key)
    if tonic_mode is None:
        raise ValueError(f"key {key!r} is not a key name such as 'A minor'")
    parsed = parse_chord(chord)
    if parsed is None:
        return None
    tonic, mode = tonic_mode
    root, quality = parsed
    degree = _DEGREES[mode][(root - tonic) % 12]
    accidental = degree.rstrip("IV")
    numeral = degree[len(accidental) :]
    if quality in _LOWER:
        numeral = numeral.lower()
    return accidental + numeral + _SUFFIX.get(quality, quality)


def progression(chords: Sequence[ChordSpan], key: str) -> str:
    """The Roman numerals of ``chords`` in ``key``, joined by ``-``: repeated chords and ``N``
    dropped, a cycle that repeats said once (``"i-VI-III-VII"``); ``""`` without chords."""
    seq: list[str] = []
    for c in chords:
        r = roman(c.chord, key)
        if r is not None and (not seq or seq[-1] != r):
            seq.append(r)
    for period in range(1, len(seq)):
        if all(seq[i] == seq[i % period] for i in range(len(seq))):
            # a cycle that returns to its start is said without the return
            seq = seq[:period]
            break
    return "-".join(seq)
