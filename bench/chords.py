"""Chords: ours against a 24-template chroma recogniser and essentia, side by side.

Run: ``python bench/chords.py [--songs N] [--split test|train] [--no-real]``.

**Rendered songs with exact chords.** Each song is written as MIDI (music21) and played by
fluidsynth (FluidR3 GM): a chord instrument (piano, electric piano, organ, nylon or steel
guitar, strings, a pad; held, re-struck on every beat or arpeggiated), a bass on the chord's
root or, for a quarter of the chords, on its third or fifth (an inversion), drums in most
songs, a melody in half of them; 70-160 BPM, one or two chords a bar, in any key. Chords are
drawn on the key's scale degrees in every quality the recogniser knows (major, minor, 7, maj7,
min7, dim, sus4, sus2; about a third of them sevenths); some songs end on two bars of drums
alone (``N``). The reference chords are the MIDI's. Seeds: ``train`` songs are the ones the
recogniser's constants were chosen on; ``test`` songs (the default) were never looked at while
choosing them.

**Real recordings.** ``../shared/realaudio2``'s files with a ``*.chords.lab`` (Harte labels;
the GuitarSet take's lead-sheet chords). With ``--beatles DIR`` (repeatable), also Beatles
songs with their Isophonics chord annotations: ``DIR/<album>/<song>.mp3`` beside
``<song>.lab``, as in the repository mattmcvicar/death2chroma at commit 6387bd3 (folders
``mp3s-32k`` and ``chordlabs``; 32 kbps mono MP3s), every song in the folder. The sets
reported are the first song of each of the 13 albums and, apart, the third and fourth songs;
the constants were chosen with the second songs (a development set) and the train renders,
never with a reported set.

Methods, in one run: ours (:func:`engine.analysis.chords.track_chords` on the beat grid of
:func:`engine.analysis.beats.track_beats`); a 24-template baseline (librosa CQT chroma,
cosine against the 24 major and minor triads, Viterbi smoothing with a self-loop of 0.9, as
in librosa's documentation); essentia's ChordsDetectionBeats (HPCP, its beat tracker's beats).
Figures from ``mir_eval.chord``: majmin and sevenths weighted accuracy (duration-weighted over
all songs) and the segmentation score (1 - the larger of under- and over-segmentation, mean
over songs). Seconds are each method's own time for a song (ours: chords only, the grid and
the shared spectrum counted apart). Prints tables, asserts nothing.
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

from engine.analysis.chords import QUALITIES  # noqa: E402

SR = 22050
SEEDS = {"train": 3000, "test": 4000}
KINDS = ("piano", "guitar", "sustained", "arpeggio")
QUALITY_WEIGHTS = {
    "maj": 0.28,
    "min": 0.22,
    "7": 0.12,
    "maj7": 0.1,
    "min7": 0.12,
    "dim": 0.06,
    "sus4": 0.05,
    "sus2": 0.05,
}
DEGREE_NAMES = {2: "2", 3: "b3", 4: "3", 5: "4", 6: "b5", 7: "5", 10: "b7", 11: "7"}  # Harte bass
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
PROGRAMS = {
    "piano": (0, 4),
    "guitar": (24, 25),
    "sustained": (16, 48, 89),
    "arpeggio": (0, 24, 25, 46),
}


@dataclass
class Song:
    """A rendered song and its reference chords."""

    name: str
    intervals: np.ndarray  # [chords, 2] seconds
    labels: list[str]
    y: np.ndarray


def q(t: float) -> float:
    """A time on the 1/48 s grid the renderer quantises notes to."""
    return round(t * 48) / 48


def render_song(rng: np.random.Generator, name: str, kind: str, tmp: Path) -> Song:
    """One song of ``kind`` with its exact chords (see the module doc)."""
    import make_vocal_set as kit

    bpm = float(rng.uniform(70, 160))
    beat = 60.0 / bpm
    tonic = int(rng.integers(0, 12))
    scale = (0, 2, 4, 5, 7, 9, 11) if rng.random() < 0.6 else (0, 2, 3, 5, 7, 8, 10)
    n_bars = int(np.ceil(30.0 / (4 * beat)))
    tail = 2 if rng.random() < 0.3 else 0
    drums_on = rng.random() < 0.75
    melody_on = rng.random() < 0.5
    qualities, weights = list(QUALITY_WEIGHTS), np.array(list(QUALITY_WEIGHTS.values()))
    chords, bass, lead, drums = [], [], [], []
    ref: list[tuple[float, float, str]] = []
    for bar in range(n_bars + tail):
        t_bar = bar * 4 * beat
        if drums_on or bar >= n_bars:
            for k in range(4):
                tb = t_bar + k * beat
                drums.append((36 if k in (0, 2) else 38, tb, 0.1, 110 if k in (0, 2) else 95))
                drums.append((42, tb, 0.05, 70))
                drums.append((42, tb + beat / 2, 0.05, 55))
        if bar >= n_bars:
            ref.append((q(t_bar), q(t_bar + 4 * beat), "N"))
            continue
        per_bar = 2 if rng.random() < 0.3 else 1
        for half in range(per_bar):
            span = 4 * beat / per_bar
            t0 = t_bar + half * span
            root = (tonic + scale[int(rng.integers(0, 7))]) % 12
            quality = str(rng.choice(qualities, p=weights / weights.sum()))
            ivs = QUALITIES[quality]  # the chord spellings (Harte) the songs are written with
            inv = int(rng.choice(ivs[1:])) if rng.random() < 0.25 else 0
            label = f"{NAMES[root]}:{quality}" + (f"/{DEGREE_NAMES[inv]}" if inv else "")
            ref.append((q(t0), q(t0 + span), label))
            low = 55 + int(rng.integers(0, 7))
            voicing = sorted({low + (root + iv - low) % 12 for iv in ivs})
            n_beats = 4 // per_bar
            if kind == "arpeggio":
                step = beat / 2
                for s in range(n_beats * 2):
                    p = voicing[s % len(voicing)]
                    chords.append((p, t0 + s * step, step * 1.5, 78))
            elif kind == "sustained":
                chords.extend((p, t0, span * 0.98, 70) for p in voicing)
            else:
                for k in range(n_beats):
                    chords.extend(
                        (p, t0 + k * beat, beat * 0.9, 80 if k == 0 else 64) for p in voicing
                    )
            b = 36 + (root + inv) % 12
            for k in range(0, n_beats, 2 if rng.random() < 0.5 else 1):
                bass.append((b, t0 + k * beat, beat * 0.9, 95))
            if melody_on:
                for k in range(n_beats * 2):
                    if rng.random() < 0.6:
                        pc = (tonic + scale[int(rng.integers(0, 7))]) % 12
                        lead.append((72 + pc, t0 + k * beat / 2, beat / 2, 72))
    song_s = (n_bars + tail) * 4 * beat
    kit.SR = SR
    kit.CLIP_S = song_s
    program = int(rng.choice(PROGRAMS[kind]))
    parts = [(program, chords), (33, bass), (73 if rng.random() < 0.5 else 65, lead), (-1, drums)]
    y = kit.render([p for p in parts if p[1]], tmp)
    y = (y / (np.abs(y).max() + 1e-9) * 0.5).astype(np.float32)
    intervals = np.array([[a, b] for a, b, _ in ref])
    return Song(name, intervals, [lab for _, _, lab in ref], y)


def songs(n_per_kind: int, split: str, cache: Path) -> list[Song]:
    """The rendered set (cached as .npz under ``cache``)."""
    return cached_renders(KINDS, n_per_kind, split, SEEDS[split], cache, render_song, _saved, _song)


def _saved(s: Song) -> dict[str, np.ndarray]:
    return {"intervals": s.intervals, "labels": np.array(s.labels), "y": s.y}


def _song(name: str, _kind: str, z: dict[str, np.ndarray]) -> Song:
    return Song(name, z["intervals"], [str(x) for x in z["labels"]], z["y"])


# --- methods ------------------------------------------------------------------------------


@dataclass
class Estimate:
    intervals: np.ndarray
    labels: list[str]
    seconds: float = 0.0


def ours(y: np.ndarray, sr: int) -> Estimate:
    from engine.analysis.beats import GRID_SR, track_beats
    from engine.analysis.chords import track_chords
    from engine.analysis.frames import track_frames
    from engine.audio import resample

    g = resample(y, sr=sr, target_sr=GRID_SR)
    grid = track_beats(g, sr=GRID_SR)
    frames = track_frames(g, sr=GRID_SR)
    t0 = time.perf_counter()
    spans = track_chords(frames, grid, duration_s=y.size / sr)
    seconds = time.perf_counter() - t0
    return Estimate(
        np.array([[c.start_s, c.end_s] for c in spans]), [c.chord for c in spans], seconds
    )


def template_baseline(y: np.ndarray, sr: int) -> Estimate:
    """24 triad templates on librosa's CQT chroma, Viterbi-smoothed (self-loop 0.9)."""
    import librosa

    t0 = time.perf_counter()
    hop = 2048
    chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop)
    names, templates = [], []
    for mode, ivs in (("maj", (0, 4, 7)), ("min", (0, 3, 7))):
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in ivs]] = 1.0
            templates.append(t / np.linalg.norm(t))
            names.append(f"{NAMES[root]}:{mode}")
    c = chroma / (np.linalg.norm(chroma, axis=0, keepdims=True) + 1e-9)
    sim = np.array(templates) @ c
    prob = np.exp(10 * sim)
    prob /= prob.sum(axis=0, keepdims=True)
    path = librosa.sequence.viterbi(prob, librosa.sequence.transition_loop(24, 0.9))
    times = librosa.frames_to_time(np.arange(path.size + 1), sr=sr, hop_length=hop)
    times[-1] = y.size / sr
    return _spans(times, [names[i] for i in path], time.perf_counter() - t0)


_ESSENTIA_QUALITY = {"": "maj", "m": "min"}


def essentia_chords(y: np.ndarray, sr: int) -> Estimate:
    """essentia ChordsDetectionBeats on HPCP frames, at RhythmExtractor2013's beats."""
    import essentia.standard as es

    t0 = time.perf_counter()
    x = es.Resample(inputSampleRate=sr, outputSampleRate=44100)(y.astype(np.float32))
    _, ticks, _, _, _ = es.RhythmExtractor2013(method="degara")(x)
    window = es.Windowing(type="blackmanharris62")
    spectrum = es.Spectrum()
    peaks = es.SpectralPeaks(
        orderBy="magnitude",
        magnitudeThreshold=1e-5,
        minFrequency=40,
        maxFrequency=5000,
        maxPeaks=100,
    )
    hpcp = es.HPCP()
    frames = [hpcp(*peaks(spectrum(window(f)))) for f in es.FrameGenerator(x, 4096, 2048)]
    ticks = np.concatenate([[0.0], np.asarray(ticks), [x.size / 44100]])
    chords, _ = es.ChordsDetectionBeats(hopSize=2048)(np.array(frames), ticks)
    labels = []
    for ch in chords:
        root = ch[:2] if len(ch) > 1 and ch[1] in "#b" else ch[:1]
        labels.append(f"{root}:{_ESSENTIA_QUALITY.get(ch[len(root) :], 'maj')}")
    return _spans(ticks[: len(labels) + 1], labels, time.perf_counter() - t0)


def _spans(bounds: np.ndarray, labels: list[str], seconds: float) -> Estimate:
    """Merge equal neighbours of per-unit labels into chord spans."""
    iv, lab = [], []
    for i, name in enumerate(labels):
        if lab and lab[-1] == name:
            iv[-1][1] = bounds[i + 1]
        else:
            iv.append([bounds[i], bounds[i + 1]])
            lab.append(name)
    return Estimate(np.array(iv), lab, seconds)


METHODS: dict[str, Callable[[np.ndarray, int], Estimate]] = {
    "ours": ours,
    "24-template chroma + Viterbi": template_baseline,
    "essentia ChordsDetectionBeats": essentia_chords,
}


# --- metrics ------------------------------------------------------------------------------


def _tiled(iv: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Intervals (none before 0 s) each ending where the next starts, empty ones dropped."""
    iv = np.clip(np.array(iv, dtype=np.float64, copy=True), 0.0, None)
    if len(iv) > 1:
        iv[:-1, 1] = iv[1:, 0]
    keep = iv[:, 1] > iv[:, 0]
    return iv[keep], [lab for lab, k in zip(labels, keep, strict=True) if k]


def scores(ref_iv: np.ndarray, ref_lab: list[str], est: Estimate) -> dict[str, tuple[float, float]]:
    """``metric -> (value x weight, weight)``: majmin and sevenths with their compared
    durations, segmentation with weight 1."""
    import mir_eval

    # annotations may overlap or leave gaps by a few ms: tile both over the reference's span
    ref_iv, ref_lab = _tiled(ref_iv, list(ref_lab))
    ref_iv, ref_lab = mir_eval.util.adjust_intervals(
        ref_iv, ref_lab, ref_iv.min(), ref_iv.max(), "N", "N"
    )
    est_iv, est_lab = _tiled(est.intervals, list(est.labels))
    est_iv, est_lab = mir_eval.util.adjust_intervals(
        est_iv, est_lab, ref_iv.min(), ref_iv.max(), "N", "N"
    )
    iv, r, e = mir_eval.util.merge_labeled_intervals(ref_iv, ref_lab, est_iv, est_lab)
    dur = mir_eval.util.intervals_to_durations(iv)
    out = {}
    for rule in ("majmin", "sevenths"):
        comp = getattr(mir_eval.chord, rule)(r, e)
        w = dur * (comp >= 0)
        out[rule] = (float(np.sum(w * np.maximum(comp, 0))), float(w.sum()))
    seg = mir_eval.chord.seg(ref_iv, est_iv)
    out["seg"] = (float(seg), 1.0)
    return out


def table(title: str, items: list[tuple[str, np.ndarray, list[str], np.ndarray, int]]) -> list[str]:
    """Rows of per-method figures over ``(name, ref intervals, ref labels, y, sr)`` items."""
    acc: dict[str, dict[str, list[float]]] = {}
    for _, ref_iv, ref_lab, y, sr in items:
        for name, fn in METHODS.items():
            try:
                est = fn(y, sr)
            except Exception as exc:  # a reference that fails on a song is said, not fatal
                print(f"{name} failed: {exc}", file=sys.stderr)
                continue
            a = acc.setdefault(
                name, {"majmin": [0, 0], "sevenths": [0, 0], "seg": [0, 0], "s": [0, 0]}
            )
            for k, (v, w) in scores(ref_iv, ref_lab, est).items():
                a[k][0] += v
                a[k][1] += w
            a["s"][0] += est.seconds
            a["s"][1] += 1
    lines = [
        title,
        "",
        "| method | majmin | sevenths | segmentation | s / song |",
        "|---|---|---|---|---|",
    ]
    for name, a in acc.items():
        cells = [
            f"{a[k][0] / a[k][1]:.3f}" if a[k][1] else "-" for k in ("majmin", "sevenths", "seg")
        ]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {a['s'][0] / max(a['s'][1], 1):.3f} |"
        )
    return lines


def real_items(shared: Path) -> list[tuple[str, np.ndarray, list[str], np.ndarray, int]]:
    """The real recordings with a chord annotation beside them."""
    import mir_eval

    from engine import audio

    out = []
    f = shared / "realaudio2" / "labels.csv"
    if not f.is_file():
        return out
    for r in csv.DictReader(f.open(encoding="utf-8")):
        if not r.get("chords_file"):
            continue
        iv, lab = mir_eval.io.load_labeled_intervals(str(shared / "realaudio2" / r["chords_file"]))
        a = audio.load(str(shared / "realaudio2" / r["file"]), max_sr=44100)
        y = audio.resample(audio.to_mono(a.samples), sr=a.sr, target_sr=SR)
        out.append((r["file"], iv, list(lab), y, SR))
    return out


def beatles_items(folder: Path) -> list[tuple[str, np.ndarray, list[str], np.ndarray, int]]:
    """Every song under ``folder``'s album folders that has its ``.lab`` beside it."""
    import mir_eval

    from engine import audio

    out = []
    for album in sorted(p for p in folder.iterdir() if p.is_dir()):
        for song in sorted(album.glob("*.mp3")):
            lab = song.with_suffix(".lab")
            if not lab.is_file():
                continue
            iv, labels = mir_eval.io.load_labeled_intervals(str(lab))
            a = audio.load(str(song), max_sr=44100)
            y = audio.resample(audio.to_mono(a.samples), sr=a.sr, target_sr=SR)
            out.append((f"{album.name}/{song.stem}", iv, list(labels), y, SR))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--songs", type=int, default=5, help="songs per kind")
    ap.add_argument("--split", choices=tuple(SEEDS), default="test")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "data" / "chords")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument(
        "--beatles", type=Path, action="append", default=[], help="Beatles songs with .lab files"
    )
    args = ap.parse_args()
    set_ = songs(args.songs, args.split, args.cache)
    items = [(s.name, s.intervals, s.labels, s.y, SR) for s in set_]
    title = f"Rendered songs ({args.split} split, {len(items)} songs of ~30 s, synthetic)"
    print("\n".join(table(title, items)))
    if not args.no_real:
        real = real_items(args.shared)
        if real:
            print()
            names = ", ".join(n for n, *_ in real)
            print("\n".join(table(f"Real recordings with chord annotations ({names})", real)))
    for folder in args.beatles:
        beatles = beatles_items(folder)
        print()
        title = (
            f"The Beatles, Isophonics chord annotations ({folder.name}: {len(beatles)} songs, real)"
        )
        print("\n".join(table(title, beatles)))


if __name__ == "__main__":
    main()
