"""Beats, downbeats, meter and tempo: ours against essentia and librosa, side by side.

Run: ``python bench/rhythm.py [--songs N] [--split test|train] [--no-real]``.

**Rendered songs with exact beats.** Each song is written as MIDI (music21) and played by
fluidsynth (FluidR3 GM): drums, bass, chords and a melody, 40 s, in 4/4, 3/4 or 6/8, swung or
straight, 60-180 BPM; some change tempo on a bar line (by 15-30 %), some drop the drums for
8 bars (a breakdown). The reference beats and downbeats are the MIDI's, on the same 1/48 s
grid the notes are quantised to. Seeds: ``train`` songs are the ones the tracker's constants
were chosen on; ``test`` songs (the default) were never looked at while choosing them.

**Real recordings.** ``../shared/realaudio2`` (tempi from the data sets' own annotations) and
``../shared/realaudio`` (tempi that are essentia estimates or the source's statement; steady
pieces only): track tempo accuracy-1 (within 4 %) and accuracy-2 (also at x2, x3, /2, /3).
Nothing was fitted on them. The tracker's constants were chosen on the ``train`` renders
and checked on a separate fit set of three real recordings from mirdata's test resources
(``FIT_SET``; ``--fit-set DIR`` prints their table).

Methods, in one run: ours (:func:`engine.analysis.beats.track_beats`), essentia
RhythmExtractor2013 (multifeature), essentia BeatTrackerMultiFeature (beats only; its tempo is
the median beat period), ``librosa.beat.beat_track``. Beat and downbeat F-measure from
``mir_eval`` (70 ms window). Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from common import cached_renders  # noqa: E402

SR = 22050
SONG_S = 40.0
KINDS = ("4/4", "3/4", "6/8", "swing", "change", "breakdown")
SEEDS = {"train": 1000, "test": 2000}


@dataclass
class Song:
    """A rendered song and its reference grid."""

    name: str
    kind: str
    meter: int  # beats per bar as written (6/8: 2 dotted-quarter beats)
    bpm: float  # the first tempo, in beats (dotted quarters in 6/8) per minute
    beats: np.ndarray  # reference beat times, s
    downbeats: np.ndarray  # reference downbeat times, s
    y: np.ndarray


def q(t: float) -> float:
    """A time on the 1/48 s grid the renderer quantises notes to."""
    return round(t * 48) / 48


def render_song(rng: np.random.Generator, name: str, kind: str, tmp: Path) -> Song:
    """One song of ``kind`` with its exact beats (see the module doc)."""
    import make_vocal_set as kit

    meter = {"3/4": 3, "6/8": 2}.get(kind, 4)
    compound = kind == "6/8"
    bpm = float(rng.uniform(45, 90) if compound else rng.uniform(60, 180))
    change_bar = int(rng.integers(6, 10)) if kind == "change" else None
    new_bpm = bpm * float(rng.choice([0.75, 0.8, 1.25, 1.32])) if kind == "change" else bpm
    new_bpm = float(np.clip(new_bpm, 55, 190))
    quiet = (int(rng.integers(4, 7)), 8) if kind == "breakdown" else None
    swing = kind == "swing"
    tonic = int(rng.integers(0, 12))
    prog = [0, 5, 3, 4] if rng.random() < 0.5 else [0, 3, 4, 0]
    major = [0, 2, 4, 5, 7, 9, 11]
    chords, bass, lead, drums = [], [], [], []
    beats, downs = [], []
    t, bar = 0.0, 0
    while t < SONG_S:
        b = new_bpm if (change_bar is not None and bar >= change_bar) else bpm
        beat = 60.0 / b
        deg = prog[bar % 4]
        root = tonic + major[deg]
        triad = [60 + (tonic + major[(deg + k) % 7]) % 12 for k in (0, 2, 4)]
        drums_on = not (quiet and quiet[0] <= bar < quiet[0] + quiet[1])
        sub = 3 if compound else 2  # subdivisions per beat
        for k in range(meter):
            tb = t + k * beat
            if tb >= SONG_S:
                break
            beats.append(q(tb))
            if k == 0:
                downs.append(q(tb))
            # chords: held through the bar, re-struck each beat softly
            chords.extend((p, tb, beat * 0.95, 72 if k == 0 else 58) for p in triad)
            bass.append((36 + root % 12, tb, beat * 0.9, 95 if k == 0 else 80))
            for s in range(sub):
                ts = tb + s * beat / sub
                if swing and s == 1:
                    ts = tb + beat * 2 / 3  # swung eighth
                if rng.random() < 0.55:
                    lead.append(
                        (72 + (tonic + major[int(rng.integers(0, 7))]) % 12, ts, beat / sub, 80)
                    )
                if not drums_on:
                    continue
                if s == 0:
                    if k == 0 or (meter == 4 and k == 2):
                        drums.append((36, tb, 0.1, 112))  # kick
                    elif meter == 2 and k == 1 and compound:
                        drums.append((38, tb, 0.1, 100))  # snare on the second dotted quarter
                    else:
                        drums.append((38 if meter != 3 else 42, tb, 0.1, 100 if meter != 3 else 80))
                drums.append((42, ts, 0.05, 70 if s == 0 else 58))  # hats
        t += meter * beat
        bar += 1
    kit.SR = SR
    kit.CLIP_S = SONG_S
    parts = [(0, chords), (33, bass), (73 if rng.random() < 0.5 else 56, lead), (-1, drums)]
    y = kit.render([p for p in parts if p[1]], tmp)
    y = (y / (np.abs(y).max() + 1e-9) * 0.5).astype(np.float32)
    beats_a = np.array([x for x in beats if x < SONG_S - 0.05])
    downs_a = np.array([x for x in downs if x < SONG_S - 0.05])
    return Song(name, kind, meter, round(bpm, 2), beats_a, downs_a, y)


def songs(n_per_kind: int, split: str, cache: Path) -> list[Song]:
    """The rendered set (cached as .npz under ``cache``)."""
    return cached_renders(KINDS, n_per_kind, split, SEEDS[split], cache, render_song, _saved, _song)


def _saved(s: Song) -> dict[str, np.ndarray]:
    return {"meter": s.meter, "bpm": s.bpm, "beats": s.beats, "downbeats": s.downbeats, "y": s.y}


def _song(name: str, kind: str, z: dict[str, np.ndarray]) -> Song:
    return Song(name, kind, int(z["meter"]), float(z["bpm"]), z["beats"], z["downbeats"], z["y"])


# --- methods ------------------------------------------------------------------------------


@dataclass
class Estimate:
    bpm: float | None
    beats: np.ndarray
    downbeats: np.ndarray | None = None
    meter: int | None = None
    seconds: float = 0.0


def ours(y: np.ndarray, sr: int) -> Estimate:
    from engine.analysis.beats import track_beats

    g = track_beats(y, sr=sr)
    meter = None
    if g.meter:
        meter = 2 if g.meter == "6/8" else int(g.meter.split("/")[0])
    return Estimate(
        g.tempo_bpm,
        np.array([b.time_s for b in g.beats]),
        np.array(g.downbeats),
        meter,
    )


def essentia_rhythm(y: np.ndarray, sr: int) -> Estimate:
    import essentia.standard as es

    x = es.Resample(inputSampleRate=sr, outputSampleRate=44100)(y.astype(np.float32))
    bpm, beats, _, _, _ = es.RhythmExtractor2013(method="multifeature")(x)
    return Estimate(float(bpm), np.asarray(beats))


def essentia_beats(y: np.ndarray, sr: int) -> Estimate:
    import essentia.standard as es

    x = es.Resample(inputSampleRate=sr, outputSampleRate=44100)(y.astype(np.float32))
    beats, _ = es.BeatTrackerMultiFeature()(x)
    beats = np.asarray(beats)
    bpm = 60.0 / float(np.median(np.diff(beats))) if beats.size > 2 else None
    return Estimate(bpm, beats)


def librosa_beats(y: np.ndarray, sr: int) -> Estimate:
    import librosa

    tempo, frames = librosa.beat.beat_track(y=y.astype(np.float32), sr=sr)
    return Estimate(float(np.atleast_1d(tempo)[0]), librosa.frames_to_time(frames, sr=sr))


METHODS: dict[str, Callable[[np.ndarray, int], Estimate]] = {
    "ours": ours,
    "essentia RhythmExtractor2013": essentia_rhythm,
    "essentia BeatTrackerMultiFeature": essentia_beats,
    "librosa beat_track": librosa_beats,
}


def timed(fn: Callable[[np.ndarray, int], Estimate], y: np.ndarray, sr: int) -> Estimate:
    t0 = time.perf_counter()
    e = fn(y, sr)
    e.seconds = time.perf_counter() - t0
    return e


# --- metrics ------------------------------------------------------------------------------


def acc1(est: float | None, ref: float) -> bool:
    return est is not None and abs(est - ref) <= 0.04 * ref


def acc2(est: float | None, ref: float) -> bool:
    return est is not None and any(acc1(est, ref * k) for k in (1, 2, 3, 0.5, 1 / 3))


def f_beats(ref: np.ndarray, est: np.ndarray) -> float:
    import mir_eval

    if ref.size == 0 or est.size == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=0.07))


def render_table(songs_: list[Song]) -> list[str]:
    rows: dict[str, dict[str, list[float]]] = {}
    for s in songs_:
        for name, fn in METHODS.items():
            e = timed(fn, s.y, SR)
            r = rows.setdefault(name, {})
            r.setdefault("beat F", []).append(f_beats(s.beats, e.beats))
            r.setdefault("acc1", []).append(float(acc1(e.bpm, s.bpm)))
            r.setdefault("acc2", []).append(float(acc2(e.bpm, s.bpm)))
            r.setdefault("s", []).append(e.seconds)
            if e.downbeats is not None:
                r.setdefault("downbeat F", []).append(f_beats(s.downbeats, e.downbeats))
            if e.meter is not None and s.kind in ("4/4", "3/4", "swing", "change", "breakdown"):
                r.setdefault("meter", []).append(float(e.meter == s.meter))
            if s.kind in ("4/4", "swing") and name == "ours":
                two_three = e.bpm is not None and any(
                    acc1(e.bpm, s.bpm * k) for k in (2 / 3, 3 / 2, 4 / 3, 3 / 4)
                )
                r.setdefault("2:3 errors", []).append(float(two_three))
    out = [
        f"Rendered songs ({len(songs_)}: {', '.join(KINDS)}), beat/downbeat F-measure at 70 ms",
        "| method | beat F | downbeat F | meter right | tempo acc1 | tempo acc2 | s per song |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():

        def m(k: str, r: dict[str, list[float]] = r) -> str:
            return f"{np.mean(r[k]):.3f}" if k in r else "-"

        out.append(
            f"| {name} | {m('beat F')} | {m('downbeat F')} | {m('meter')} | {m('acc1')} | "
            f"{m('acc2')} | {np.mean(r['s']):.2f} |"
        )
    two_three = rows.get("ours", {}).get("2:3 errors", [])
    if two_three:
        out.append("")
        out.append(
            f"ours, 2:3 or 3:4 tempo errors on steady 4/4 and swing songs: "
            f"{int(sum(two_three))} of {len(two_three)}"
        )
    by_kind: dict[str, list[float]] = {}
    for s in songs_:
        e = ours(s.y, SR)
        by_kind.setdefault(s.kind, []).append(f_beats(s.beats, e.beats))
    out.append("")
    out.append(
        "ours, beat F by kind: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in by_kind.items())
    )
    return out


def real_rows(shared: Path) -> list[tuple[str, float, str]]:
    """(path, reference tempo, basis) for the real recordings with a stated tempo."""
    rows = []
    f2 = shared / "realaudio2" / "labels.csv"
    if f2.is_file():
        for r in csv.DictReader(f2.open(encoding="utf-8")):
            if r.get("tempo_bpm"):
                rows.append(
                    (str(shared / "realaudio2" / r["file"]), float(r["tempo_bpm"]), "annotated")
                )
    f1 = shared / "realaudio" / "labels.csv"
    if f1.is_file():
        for r in csv.DictReader(f1.open(encoding="utf-8")):
            if r.get("tempo_ref_bpm") and r.get("steady_tempo") == "yes":
                rows.append(
                    (str(shared / "realaudio" / r["file"]), float(r["tempo_ref_bpm"]), "estimate")
                )
    return rows


# Real recordings the tracker's choices were checked on (the "fit set"): mirdata's test
# resources at commit b95bf3893616ff16082beed7869f144bb711c163, under
# tests/resources/mir_datasets/, with their data sets' own tempo annotations. None of them is
# among the reported recordings. Copy them into ``bench/data/fitreal/`` under these names.
FIT_SET = (
    ("ballroom_Media-105901.wav", "ballroom/B_1.0/audio/Waltz/Media-105901.wav", 84.0),
    ("gtzan_country_00000.wav", "gtzan_genre/gtzan_genre/genres/country/country.00000.wav", 85.53),
    ("cuidado_FallaCancion.flac", "cuidado/C_1.0/audio/cuidado_FallaCancion.flac", 191.27),
)


def fit_rows(folder: Path) -> list[tuple[str, float, str]]:
    """(path, reference tempo, basis) for the fit set's recordings present in ``folder``."""
    return [(str(folder / f), bpm, "fit") for f, _, bpm in FIT_SET if (folder / f).is_file()]


def real_table(
    shared: Path, rows: list[tuple[str, float, str]] | None = None, *, title: str = ""
) -> list[str]:
    from engine import audio

    rows = real_rows(shared) if rows is None else rows
    if not rows:
        return []
    hits: dict[str, dict[str, list[float]]] = {}
    lines = [
        "| file | reference | " + " | ".join(METHODS) + " |",
        "|---|---|" + "---|" * len(METHODS),
    ]
    for path, ref, basis in rows:
        a = audio.load(path, max_sr=44100)
        y = audio.resample(audio.to_mono(a.samples), sr=a.sr, target_sr=SR)
        cells = []
        for name, fn in METHODS.items():
            e = fn(y, SR)
            h = hits.setdefault(name, {})
            h.setdefault(f"acc1 {basis}", []).append(float(acc1(e.bpm, ref)))
            h.setdefault(f"acc2 {basis}", []).append(float(acc2(e.bpm, ref)))
            cells.append(f"{e.bpm:.1f}" if e.bpm else "-")
        lines.append(f"| {Path(path).name[:40]} | {ref:g} ({basis}) | " + " | ".join(cells) + " |")
    lines.append("")
    bases = list(dict.fromkeys(basis for _, _, basis in rows))
    lines.append("| method | " + " | ".join(f"acc1 {b} | acc2 {b}" for b in bases) + " |")
    lines.append("|---|" + "---|---|" * len(bases))
    for name, h in hits.items():

        def m(k: str, h: dict[str, list[float]] = h) -> str:
            v = h.get(k, [])
            return f"{np.mean(v):.2f} ({int(sum(v))}/{len(v)})" if v else "-"

        lines.append(
            f"| {name} | "
            + " | ".join(f"{m(f'acc1 {b}')} | {m(f'acc2 {b}')}" for b in bases)
            + " |"
        )
    return [title or "Real recordings: track tempo", *lines]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--songs", type=int, default=4, help="songs per kind")
    ap.add_argument("--split", choices=tuple(SEEDS), default="test")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "data" / "rhythm")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument(
        "--fit-set",
        type=Path,
        default=None,
        help="folder with the fit set's recordings (FIT_SET): print their table too",
    )
    args = ap.parse_args()
    set_ = songs(args.songs, args.split, args.cache)
    print("\n".join(render_table(set_)))
    if not args.no_real:
        print()
        print("\n".join(real_table(args.shared)))
    if args.fit_set is not None:
        print()
        title = "Fit set (choices were checked on these: not a held-out figure): track tempo"
        print("\n".join(real_table(args.shared, fit_rows(args.fit_set), title=title)))


if __name__ == "__main__":
    main()
