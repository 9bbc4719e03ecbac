"""Regions are evidence, the track is the story: key, tempo and vocals decoded over a track.

Each region carries evidence (its 24 key probabilities and tonality, its periodicity peaks,
its vocal probabilities). :func:`resolve` decodes one state sequence per aspect over the whole
track with the Viterbi algorithm: the state that explains the regions best, where every change
costs a penalty (``[track]`` in the preset). So a key change is decoded only where the regions
after it support the new key by more than the penalty in total, a region that hears a tempo at
another metrical level stays on the track's level unless several regions say otherwise, and a
track with no pitched content decodes to "no clear key". Each decoded change gets a confidence
(:func:`change_confidence`); changes below ``min_event_confidence`` are merged away, so every
change left in the regions' reported values is one the narrative says.

Silent regions are transparent: they neither vote nor break a state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from daw_bridge.keys import GENDER_CONFIDENCE
from engine.analysis.chords import NO_CHORD, home_keys, voiced_seconds
from engine.labels import KEYS, VOCALS
from engine.presets import AnalysisSettings, TrackSettings
from engine.types import (
    BeatGrid,
    ChordSpan,
    KeyEstimate,
    NarrativeEvent,
    RegionAnnotation,
    VocalsEstimate,
)

NO_KEY = len(KEYS)  # the extra key state: "no clear key"
TEMPO_STEP_OCTAVES = 0.01  # tempo grid resolution (0.7 %)
TEMPO_PEAK_OCTAVES = 0.015  # width of one periodicity peak on the grid
TEMPO_DRIFT_STEPS = 2  # moving this many grid steps between regions is not a change
SAME_TEMPO = 0.04  # a region tempo within 4 % of the decoded one is that tempo
OPENING_KEY_PRIOR = 0.25  # nats added to the first audible region's best key state
METRICAL_RATIOS = (1.0, 2.0, 0.5, 1.5, 2 / 3, 3.0, 1 / 3, 4.0, 0.25)


@dataclass(frozen=True)
class Resolution:
    """The track-level view of a file's regions.

    Attributes:
        annotations: the regions in time order; ``key`` and ``tempo_bpm`` are the decoded
            track view, ``region_key`` and ``region_tempo_bpm`` what each region alone says,
            ``vocals`` the decoded vocals.
        changes: region index -> the changes decoded at that region's start, in
            the order key, tempo, vocals (each with its confidence).
        tempo_bpm: the track's main tempo (its metrical level), None when no region has a pulse.
    """

    annotations: tuple[RegionAnnotation, ...]
    changes: dict[int, tuple[NarrativeEvent, ...]]
    tempo_bpm: float | None


def resolve(
    annotations: Sequence[RegionAnnotation],
    *,
    settings: TrackSettings | None = None,
    analysis: AnalysisSettings | None = None,
    grid: BeatGrid | None = None,
) -> Resolution:
    """Decode key, tempo and vocals over a track's regions.

    With a beat grid, the tempo is the grid's: each region's tempo is the grid's tempo over
    it and a tempo change is a change of the grid's tempo, so the beats, the regions' tempi
    and the narrative agree.

    Idempotent: a region already resolved is decoded again from its own evidence
    (``region_key``, ``region_tempo_bpm``), so resolving a resolved track changes nothing.

    Args:
        annotations: the file's regions (any order; sorted by start here).
        settings: penalties, floors and thresholds; the defaults when None.
        analysis: the tempo range and prior; the defaults when None.
        grid: the track's beat grid (:func:`engine.analysis.beats.track_beats`); without
            one (or without beats) the tempo is decoded from the regions' evidence.

    Returns:
        The resolved regions, the changes between them and the track tempo.
    """
    cfg = settings or TrackSettings()
    ana = analysis or AnalysisSettings()
    regions = sorted(annotations, key=lambda a: a.start_s)
    if not regions:
        return Resolution((), {}, None)
    changes: dict[int, list[NarrativeEvent]] = {}
    keys, key_conf = _decode_keys(regions, cfg, changes)
    if grid is not None and grid.beats:
        tempi, track_bpm = _grid_tempi(regions, grid, changes)
    else:
        tempi, track_bpm = _decode_tempi(regions, cfg, ana, changes)
    vocals = _decode_vocals(regions, cfg, changes)
    out = []
    for i, a in enumerate(regions):
        own_key = _own_key(a)
        own_bpm = _own_tempo(a)
        key: KeyEstimate | None = None
        flags = tuple(f for f in a.flags if f != "no_clear_key")
        if own_key is not None and not a.silent:
            if keys[i] == NO_KEY:
                flags += ("no_clear_key",)
            else:
                key = KeyEstimate(KEYS[keys[i]], key_conf[i])
        out.append(
            replace(
                a,
                key=key,
                region_key=own_key,
                tempo_bpm=tempi[i],
                region_tempo_bpm=own_bpm,
                vocals=vocals[i],
                flags=flags,
            )
        )
    # the decoders ran key, tempo, vocals: each region's changes are already in that order
    return Resolution(tuple(out), {i: tuple(ev) for i, ev in changes.items()}, track_bpm)


def _own_key(a: RegionAnnotation) -> KeyEstimate | None:
    return a.region_key if a.region_key is not None else a.key


def _own_tempo(a: RegionAnnotation) -> float | None:
    return a.region_tempo_bpm if a.region_tempo_bpm is not None else a.tempo_bpm


# --- decoding -------------------------------------------------------------------------------


def viterbi(emissions: np.ndarray, transition: np.ndarray) -> np.ndarray:
    """The most likely state sequence.

    Args:
        emissions: log-evidence of each state in each step, ``[steps, states]``.
        transition: log-cost of moving from state ``i`` to ``j``, ``[states, states]``.

    Returns:
        ``path`` [steps] of state indices.
    """
    n, s = emissions.shape
    score = emissions[0].copy()
    back = np.zeros((n, s), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + transition  # [from, to]
        back[t] = np.argmax(cand, axis=0)
        score = cand[back[t], np.arange(s)] + emissions[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def change_confidence(margin: float, penalty: float) -> float:
    """Confidence in [0, 1) of a change whose new state out-explains the old one by ``margin``
    nats over the section that follows it: ``1 - exp(-margin / penalty)`` (0.63 at a margin of
    one penalty)."""
    if margin <= 0:
        return 0.0
    return 1.0 - math.exp(-margin / max(penalty, 1e-9))


def _segments(path: Sequence[int] | np.ndarray, same: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` runs of steps whose states are the same (``same[i, j]`` True)."""
    runs = [[0, 1]]
    for t in range(1, len(path)):
        if same[path[t - 1], path[t]]:
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1])
    return [(a, b) for a, b in runs]


def _decode(
    emissions: np.ndarray,
    transition: np.ndarray,
    same: np.ndarray,
    *,
    penalty: float,
    min_confidence: float,
) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """Viterbi, then merge changes whose confidence is under ``min_confidence``.

    A weak change is removed by giving both runs around it the one state that explains their
    union best; this repeats until every change left is confident.

    Returns:
        ``(path, changes)``: the state per step and ``(step, confidence)`` of each change.
    """
    path = viterbi(emissions, transition)
    while True:
        runs = _segments(path, same)
        if len(runs) == 1:
            return path, []
        scored = []
        for (a, _b), (c, d) in itertools.pairwise(runs):
            old, new = path[a], path[c]
            margin = float(emissions[c:d, new].sum() - emissions[c:d, old].sum())
            scored.append((change_confidence(margin, penalty), a, c, d))
        weakest = min(scored)
        if weakest[0] >= min_confidence:
            return path, [(c, conf) for conf, _, c, _ in scored]
        _, a, _, d = weakest
        best = int(np.argmax(emissions[a:d].sum(axis=0)))
        path[a:d] = best


def _decode_classes(
    emissions: np.ndarray, *, penalty: float, min_confidence: float
) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """:func:`_decode` over unordered classes: every change between two classes costs the same
    ``penalty``. ``emissions`` is ``[steps, classes]`` log-evidence."""
    k = emissions.shape[1]
    transition = np.full((k, k), -penalty)
    np.fill_diagonal(transition, 0.0)
    return _decode(
        emissions,
        transition,
        np.eye(k, dtype=bool),
        penalty=penalty,
        min_confidence=min_confidence,
    )


def _audible(regions: Sequence[RegionAnnotation], has: Sequence[bool]) -> list[int]:
    return [i for i, a in enumerate(regions) if not a.silent and has[i]]


def _fill(n: int, idx: list[int], values: Sequence[object], default: object) -> list:
    out: list[object] = [default] * n
    for i, v in zip(idx, values, strict=True):
        out[i] = v
    return out


# --- key -----------------------------------------------------------------------------------


def key_distribution(est: KeyEstimate) -> np.ndarray:
    """The 24 key probabilities of an estimate [24]: its own, or rebuilt from the key and
    its candidates (the rest shared evenly) when it carries none."""
    if len(est.probabilities) == len(KEYS):
        p = np.asarray(est.probabilities, dtype=np.float64)
    else:
        p = np.zeros(len(KEYS))
        for k, s in est.candidates:
            p[KEYS.index(k)] = s
        p[KEYS.index(est.key)] = est.confidence
        rest = p == 0
        if rest.any():
            p[rest] = max(0.0, 1.0 - p.sum()) / rest.sum()
    total = p.sum()
    return p / total if total > 0 else np.full(len(KEYS), 1.0 / len(KEYS))


HARMONY_FROM, HARMONY_FULL = 0.5, 0.75  # chords' share of a region: from some to full say
# Under this share of chords a region needs more tonality for a key, up to
# ``min_tonality_chordless`` where it holds none. Set, not fitted: GM drum kits rendered alone
# hold chords in 0-2 % of their regions and every tonal render in all of them
# (``bench/drum_keys.py``), so any value between serves the renders; a quarter keeps the
# plain threshold for a sparse riff or a melody the recogniser reads in part.
CHORDLESS_BELOW = 0.25
# The home key gets its full bonus where the chords support it this many chord-weighted
# seconds above any other key, proportionally less below: a song's chords lead by tens of
# seconds, a 15 s excerpt's by a few or none. Chosen on the Beatles dev songs and GTZAN clips
# 0-4 (a lead of 1 to 3.75 s: dev 0.921; 3.5 to 5 s: GTZAN dev 0.560; always full: 0.915 and
# 0.437), the train renders rising with it (0.811 always full, 0.886 at 3.75).
HOME_FULL_LEAD_S = 3.75


def no_key_probability(
    tonality: float | None, cfg: TrackSettings, *, chords: float | None = None
) -> float:
    """Probability that a region has no clear key, from its tonality (0 when unmeasured) and,
    when its chords were read, the share of it they fill (:func:`chord_share`): the tonality it
    needs is :func:`needed_tonality`."""
    if tonality is None:
        return 0.0
    z = (needed_tonality(chords, cfg) - tonality) / cfg.tonality_width
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def chord_share(a: RegionAnnotation) -> float | None:
    """The share of a region's time its chords (not ``N``) fill; None when it carries no
    chords (they were not read, or it is silent)."""
    span = a.end_s - a.start_s
    if not a.chords or span <= 0:
        return None
    return min(1.0, voiced_seconds(a.chords) / span)


def needed_tonality(chords: float | None, cfg: TrackSettings) -> float:
    """The tonality at which a region is as likely to have a key as not.

    ``min_tonality`` where chords fill at least :data:`CHORDLESS_BELOW` of the region (or they
    were not read, ``chords`` None), rising linearly to ``min_tonality_chordless`` where they
    fill none. A drum kit alone holds steady partials (a ride cymbal, tuned toms, an 808's
    cymbal), coherent enough with equal temperament to pass ``min_tonality``, but the chord
    recogniser finds no chord in them (``N``); music without a chord in a whole region is a
    melody alone, whose notes the recogniser reads as chords, or a break."""
    if chords is None or chords >= CHORDLESS_BELOW:
        return cfg.min_tonality
    lack = 1.0 - chords / CHORDLESS_BELOW
    return cfg.min_tonality + lack * (cfg.min_tonality_chordless - cfg.min_tonality)


def harmony_share(a: RegionAnnotation) -> float:
    """How far the chords under a region say it has harmony, in [0, 1]: 0 when chords (not
    ``N``) fill up to :data:`HARMONY_FROM` of its time (or it carries none), 1 from
    :data:`HARMONY_FULL`, linear between. Chords are read against each other (the best chord
    must stand out from the median one), so detuned unison synths and saturation, which lower
    the tuning coherence behind the tonality, leave them: a region whose chords fill it has a
    key whatever its tonality; drums, noise and speech find ``N``."""
    voiced = chord_share(a)
    if voiced is None:
        return 0.0
    return float(np.clip((voiced - HARMONY_FROM) / (HARMONY_FULL - HARMONY_FROM), 0.0, 1.0))


def _decode_keys(
    regions: Sequence[RegionAnnotation],
    cfg: TrackSettings,
    changes: dict[int, list[NarrativeEvent]],
) -> tuple[list[int], list[float]]:
    """Keys in two steps, as the vocals: whether there is a key, then which.

    Whether is decoded over two states, a key and "no clear key", from each region's tonality
    (:func:`no_key_probability`; a region without chords needs more of it) and the chords under
    it (:func:`harmony_share`), so regions
    whose key is uncertain but pitched still count towards a key: a singer without
    accompaniment whose three regions each lean to G minor has G minor, where one decoder over
    the 25 states gave "no clear key" to every region whose best key was less likely than the
    threshold's share; and a region whose chords fill it has a key whatever its tonality.
    Which key is then decoded over the regions that have one, in order, as if the stretches
    without a key were not there: a drum break does not end the key, and the key after it is
    told only when it differs from the one before. When the regions carry the track's chords,
    the home key of the chords under each region (:func:`engine.analysis.chords.home_keys`)
    gets ``home_key_bonus`` nats there.
    """
    own = [_own_key(a) for a in regions]
    idx = _audible(regions, [k is not None for k in own])
    if not idx:
        return [NO_KEY] * len(regions), [0.0] * len(regions)
    unpitched = [
        no_key_probability(own[i].tonality, cfg, chords=chord_share(regions[i]))  # type: ignore[union-attr]
        for i in idx
    ]
    none = np.array(
        [p * (1.0 - harmony_share(regions[i])) for p, i in zip(unpitched, idx, strict=True)]
    )
    dist = np.stack([key_distribution(own[i]) for i in idx])  # type: ignore[arg-type]
    probs = np.concatenate([(1.0 - none)[:, None] * dist, none[:, None]], axis=1)
    presence, found = _decode_classes(
        np.log(cfg.key_floor + np.stack([1.0 - none, none], axis=1)),
        penalty=cfg.key_change_penalty,
        min_confidence=cfg.min_event_confidence,
    )
    path = np.full(len(idx), NO_KEY)
    keyed = np.flatnonzero(presence == 0)
    moves: dict[int, float] = {}
    if keyed.size:
        emissions = np.log(cfg.key_floor + dist[keyed])
        homes = _home_keys([regions[idx[t]] for t in keyed], regions)
        for row, (home, lead) in enumerate(homes):
            # the key the chords under a region circle weighs in it: a region leaves it only
            # where its own evidence outweighs that; chords that barely prefer it (a short
            # excerpt, a muddy mix) say less
            if home is not None:
                weight = min(1.0, max(0.0, lead) / HOME_FULL_LEAD_S)
                emissions[row, KEYS.index(home)] += cfg.home_key_bonus * weight
        if not any(h is not None for h, _ in homes):
            # the opening key is the home key unless the rest of the track says otherwise:
            # this breaks near-ties between keys the regions support equally (a relative
            # major and minor)
            emissions[0, int(np.argmax(dist[keyed[0]]))] += OPENING_KEY_PRIOR
        path[keyed], key_found = _decode_classes(
            emissions,
            penalty=cfg.key_change_penalty,
            min_confidence=cfg.min_event_confidence,
        )
        moves = {int(keyed[step]): conf for step, conf in key_found}
    told = dict(moves)
    for step, conf in found:
        # a key's return after a stretch without one is told when it is a new key, with the
        # confidence of both decisions
        told[step] = min(conf, moves[step]) if step in moves else conf
    for step in sorted(told):
        state = int(path[step])
        if state != NO_KEY and step not in moves and any(path[:step] != NO_KEY):
            continue  # the key comes back as it was: nothing to tell
        text = "the key becomes unclear" if state == NO_KEY else f"the key moves to {KEYS[state]}"
        changes.setdefault(idx[step], []).append(NarrativeEvent("key", text, round(told[step], 3)))
    conf_rows = []
    for a, b in _segments(path, np.eye(NO_KEY + 1, dtype=bool)):
        mean = float(probs[a:b, path[a]].mean())
        conf_rows.extend([round(min(1.0, max(0.0, mean)), 4)] * (b - a))
    return (
        _fill(len(regions), idx, [int(s) for s in path], NO_KEY),
        _fill(len(regions), idx, conf_rows, 0.0),
    )


def _home_keys(
    keyed: Sequence[RegionAnnotation], regions: Sequence[RegionAnnotation]
) -> list[tuple[str | None, float]]:
    """The home key of the chords under each region (:func:`engine.analysis.chords.home_keys`,
    the stretch holding most of the region's time) and its lead over the runner-up key in
    chord-weighted seconds; ``(None, 0.0)`` without chords. A silent region carries no
    chords; it counts as ``N`` here, so that a track opening (closing) on a whole region of
    silence still opens (closes) without a chord, and its first (last) chord is a cadence."""
    chords = {c for a in regions for c in a.chords}
    if chords:
        chords |= {ChordSpan(a.start_s, a.end_s, NO_CHORD, 1.0) for a in regions if a.silent}
    spans = home_keys(sorted(chords, key=lambda c: c.start_s))
    out: list[tuple[str | None, float]] = []
    for a in keyed:
        best: tuple[str | None, float] = (None, 0.0)
        held = 0.0
        for s, e, key, lead in spans:
            overlap = min(e, a.end_s) - max(s, a.start_s)
            if overlap > held:
                best, held = (key, lead), overlap
        out.append(best)
    return out


# --- tempo ---------------------------------------------------------------------------------


def tempo_grid(min_bpm: float, max_bpm: float) -> np.ndarray:
    """Log-spaced tempo states from ``min_bpm`` to ``max_bpm``, ``TEMPO_STEP_OCTAVES`` apart."""
    n = math.floor(math.log2(max_bpm / min_bpm) / TEMPO_STEP_OCTAVES) + 1
    return min_bpm * 2.0 ** (TEMPO_STEP_OCTAVES * np.arange(n))


def tempo_evidence(candidates: Sequence[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """Salience of each grid tempo for one region [states]: the strongest nearby periodicity
    peak, each peak spread over ``TEMPO_PEAK_OCTAVES``."""
    ev = np.zeros(grid.size)
    for bpm, salience in candidates:
        if bpm <= 0 or salience <= 0:
            continue
        d = np.log2(grid / bpm) / TEMPO_PEAK_OCTAVES
        ev = np.maximum(ev, salience * np.exp(-0.5 * d * d))
    return ev


EVIDENCE_MIN_BPM = 15.0  # the evidence grid reaches this far below the tempo range
COMB = (1, 2, 3, 4)  # the track's level: a tempo's period and these multiples of it
REGION_COMB = (1, 2)  # a region's evidence for a tempo: its period and twice it


def comb_evidence(
    evidence: np.ndarray, grid: np.ndarray, *, multiples: tuple[int, ...] = COMB
) -> np.ndarray:
    """Each tempo's evidence summed over its period's ``multiples``, ``[..., states]``.

    A pulse's onset autocorrelation peaks at every multiple of its period, so the beat is the
    fastest tempo whose multiples all hear it, whereas an unrelated periodicity lacks them.
    """
    steps = np.log2(grid / grid[0]) / TEMPO_STEP_OCTAVES
    rows = evidence.reshape(-1, evidence.shape[-1])
    out = np.zeros_like(rows)
    for k in multiples:
        shifted = steps - np.log2(k) / TEMPO_STEP_OCTAVES
        out += np.stack([np.interp(shifted, steps, row, left=0.0) for row in rows])
    return out.reshape(evidence.shape)


def track_tempo(
    comb: np.ndarray, grid: np.ndarray, *, prior_bpm: float, prior_octaves: float
) -> int:
    """Grid index of the track's main tempo: the regions' comb evidence summed and weighted by
    a log-normal prior, which picks between levels the comb cannot tell apart (a beat and its
    eighth notes).

    Args:
        comb: ``[regions, states]`` comb evidence (:func:`comb_evidence`) on ``grid``.
        grid: tempo states (BPM), log-spaced by :data:`TEMPO_STEP_OCTAVES`.
        prior_bpm: centre of the level prior.
        prior_octaves: its standard deviation in octaves.
    """
    prior = np.exp(-0.5 * (np.log2(grid / prior_bpm) / prior_octaves) ** 2)
    return int(np.argmax(comb.sum(axis=0) * prior))


def _decode_tempi(
    regions: Sequence[RegionAnnotation],
    cfg: TrackSettings,
    ana: AnalysisSettings,
    changes: dict[int, list[NarrativeEvent]],
) -> tuple[list[float | None], float | None]:
    n = len(regions)
    own = [_own_tempo(a) for a in regions]
    idx = _audible(regions, [bool(a.tempo_candidates) for a in regions])
    if not idx:
        return [None if a.silent else own[i] for i, a in enumerate(regions)], None
    wide = tempo_grid(min(EVIDENCE_MIN_BPM, ana.tempo_min_bpm), ana.tempo_max_bpm)
    inside = wide >= ana.tempo_min_bpm * (1 - 1e-9)
    grid = wide[inside]
    raw = np.stack([tempo_evidence(regions[i].tempo_candidates, wide) for i in idx])
    # the full comb picks the track's level; each region weighs its period and twice it, both
    # in the tempo range (a narrow comb tells a real tempo change from a tempo that only
    # shares a slow sub-multiple with the old one)
    main = track_tempo(
        comb_evidence(raw, wide)[:, inside],
        grid,
        prior_bpm=cfg.level_prior_bpm,
        prior_octaves=cfg.level_prior_octaves,
    )
    in_range = np.where(inside, raw, 0.0)  # a region's own peaks in the tempo range only
    evidence = comb_evidence(in_range, wide, multiples=REGION_COMB)[:, inside] / len(REGION_COMB)
    level = -0.5 * (np.log2(grid / grid[main]) / cfg.tempo_level_octaves) ** 2
    emissions = np.log(cfg.tempo_floor + evidence) + level
    steps = np.arange(grid.size)
    near = np.abs(steps[:, None] - steps[None, :]) <= TEMPO_DRIFT_STEPS
    transition = np.where(near, 0.0, -cfg.tempo_change_penalty)
    # "same" for merging runs: within the change threshold of the narrative (6 %)
    same = np.abs(steps[:, None] - steps[None, :]) * TEMPO_STEP_OCTAVES <= math.log2(1.06)
    path, found = _decode(
        emissions,
        transition,
        same,
        penalty=cfg.tempo_change_penalty,
        min_confidence=cfg.min_event_confidence,
    )
    decoded = [float(grid[s]) for s in path]
    # a run's tempo: the median of its regions' own tempi placed on the decoded level
    runs = _segments(path, same)
    values: list[float | None] = [None] * len(idx)
    for a, b in runs:
        placed = [
            _on_level(own[idx[t]], regions[idx[t]].tempo_candidates, decoded[t])
            for t in range(a, b)
        ]
        for t, v in zip(range(a, b), placed, strict=True):
            values[t] = v
    for step, conf in found:
        prev, cur = _run_tempo(values, runs, step - 1), _run_tempo(values, runs, step)
        verb = "rises" if (cur or 0) > (prev or 0) else "falls"
        text = f"the tempo {verb} to {cur:.0f} BPM" if cur else "the pulse fades"
        changes.setdefault(idx[step], []).append(NarrativeEvent("tempo", text, round(conf, 3)))
    out = _fill(n, idx, values, None)
    for i, region in enumerate(regions):  # a region without periodicity keeps its own (None)
        if i not in idx and not region.silent:
            out[i] = own[i]
    return out, float(grid[main])


def _grid_tempi(
    regions: Sequence[RegionAnnotation],
    grid: BeatGrid,
    changes: dict[int, list[NarrativeEvent]],
) -> tuple[list[float | None], float | None]:
    """Each region's tempo from the grid, and a change where the grid's tempo changes (in the
    region the new tempo starts in, with the grid's confidence)."""
    out: list[float | None] = []
    for a in regions:
        bpm = None if a.silent else grid.tempo_between(a.start_s, a.end_s)
        out.append(bpm if bpm is not None or a.silent else _own_tempo(a))
    for prev, span in itertools.pairwise(grid.tempi):
        at = next((i for i, a in enumerate(regions) if a.start_s <= span.start_s < a.end_s), None)
        if at is None or at == 0:
            continue
        verb = "rises" if span.bpm > prev.bpm else "falls"
        text = f"the tempo {verb} to {span.bpm:.0f} BPM"
        changes.setdefault(at, []).append(NarrativeEvent("tempo", text, round(grid.confidence, 3)))
    return out, grid.tempo_bpm


def _run_tempo(values: list[float | None], runs: list[tuple[int, int]], step: int) -> float | None:
    for a, b in runs:
        if a <= step < b:
            tempi = sorted(v for v in values[a:b] if v is not None)
            return tempi[len(tempi) // 2] if tempi else None
    return None


def _on_level(
    own: float | None, candidates: Sequence[tuple[float, float]], decoded: float
) -> float | None:
    """The region's tempo on the decoded metrical level, None when the region has no pulse.

    Its own estimate when that is within :data:`SAME_TEMPO` of the decoded tempo; else its
    own estimate moved by a metrical ratio (2, 3/2, ...) when that lands there; else its
    nearest periodicity peak there; else the decoded tempo itself.
    """
    if own is None:
        return None
    for ratio in METRICAL_RATIOS:
        if abs(math.log(own * ratio / decoded)) <= math.log1p(SAME_TEMPO):
            return round(own * ratio, 2)
    near = [float(b) for b, _ in candidates if abs(math.log(b / decoded)) <= math.log1p(SAME_TEMPO)]
    if near:
        closest: float = min(near, key=lambda b: abs(math.log(b / decoded)))
        return round(closest, 2)
    return round(decoded, 2)


# --- vocals --------------------------------------------------------------------------------


def gender_share(v: VocalsEstimate) -> float:
    """P(the labelled gender | vocals) of an estimate, 0 when it says "none"."""
    if v.label == "none":
        return 0.0
    col = VOCALS.index(v.label)
    return float(v.probabilities[col] / max(1e-9, 1.0 - v.probabilities[0]))


def vocal_presence(v: VocalsEstimate) -> float:
    """P(vocals) of a region: the male and female probabilities together."""
    return float(np.clip(1.0 - v.probabilities[0], 0.0, 1.0))


def _decode_vocals(
    regions: Sequence[RegionAnnotation],
    cfg: TrackSettings,
    changes: dict[int, list[NarrativeEvent]],
) -> list[VocalsEstimate | None]:
    """Vocals in two steps: presence, then the gender of each sung stretch.

    Presence is decoded over two states, instrumental and sung, from each region's P(vocals)
    (its male and female probabilities together), so a voice whose probability is split
    between the genders still counts whole. Every entry or exit costs the penalty: vocals
    enter and leave where the regions' evidence does, stretch by stretch. Each sung stretch
    then gets the gender its regions support together (decoded the same way, so a lead vocal
    can change), told in the narrative only when P(gender | vocals) over the stretch reaches
    :data:`GENDER_CONFIDENCE`.
    """
    idx = _audible(regions, [a.vocals is not None for a in regions])
    out: list[VocalsEstimate | None] = [a.vocals for a in regions]
    if not idx:
        return out
    ests = [regions[i].vocals for i in idx]
    probs = np.array([e.probabilities for e in ests], dtype=np.float64)  # type: ignore[union-attr]
    present = np.array([vocal_presence(e) for e in ests])  # type: ignore[arg-type]
    path, found = _decode_classes(
        np.log(cfg.vocals_floor + np.stack([1.0 - present, present], axis=1)),
        penalty=cfg.vocals_change_penalty,
        min_confidence=cfg.min_event_confidence,
    )
    label = ["none"] * len(idx)
    confident = [False] * len(idx)
    gender_changes: list[tuple[int, float]] = []
    for a, b in _segments(path, np.eye(2, dtype=bool)):
        if path[a] == 0:
            continue
        sung = probs[a:b, 1:] / np.maximum(probs[a:b, 1:].sum(axis=1, keepdims=True), 1e-9)
        genders, flips = _decode_classes(
            np.log(cfg.vocals_floor + sung),
            penalty=cfg.vocals_change_penalty,
            min_confidence=cfg.min_event_confidence,
        )
        for c, d in _segments(genders, np.eye(2, dtype=bool)):
            share = float(sung[c:d, genders[c]].mean())
            for t in range(a + c, a + d):
                label[t] = VOCALS[1 + int(genders[c])]
                confident[t] = share >= GENDER_CONFIDENCE
        gender_changes.extend((a + step, conf) for step, conf in flips)
    for row, i in enumerate(idx):
        v = regions[i].vocals
        assert v is not None
        out[i] = VocalsEstimate(label[row], v.probabilities)
    events = [(step, conf, False) for step, conf in found]
    events += [(step, conf, True) for step, conf in gender_changes]
    for step, conf, gender_change in sorted(events):
        cur = label[step]
        told = cur if confident[step] else ""
        if gender_change:
            if not (confident[step] and confident[step - 1]):
                continue  # a change between genders nobody is sure of is not told
            text = f"the lead vocal changes to {cur}"
        elif cur == "none":
            text = "the vocals drop out"
        else:
            text = f"{told} vocals enter".strip()
        changes.setdefault(idx[step], []).append(NarrativeEvent("vocals", text, round(conf, 3)))
    return out
