"""The track's form: ours against librosa and msaf, side by side.

Run: ``python bench/form.py [--songs N] [--split test|train] [--no-real] [--no-msaf]``.

**Rendered songs with known forms.** Each song is written as MIDI (music21) and played by
fluidsynth (FluidR3 GM), in one key and one tempo from start to end, so that key and tempo
alone cannot find a boundary. Its sections (pop: intro, verse, chorus, verse, chorus, bridge,
chorus, outro; short pop: intro, verse, chorus, verse, chorus, outro; EDM: intro, build-up,
drop, breakdown, build-up, drop, outro; ABABCB) differ by chord progression, instruments,
drum pattern, density and loudness; a returning section keeps its material and gets a new
melody. The reference is the MIDI's section starts. ``train`` songs are the ones the form's
constants were chosen on; ``test`` songs (the default) were never looked at while choosing
them.

**Real recordings with annotated sections.** ``Mindless_cut.mp3`` (63 s of Sargon's
"Mindless", with Oriol Nieto's section annotation) from the test fixtures of msaf
(github.com/urinieto/msaf, ``tests/fixtures/Sargon_test``), copied by hand into the
gitignored ``bench/data/form_real/`` (``sargon_mindless_cut.mp3`` + ``.jams``); never
committed. Nothing was fitted on it.

Methods, in one run: ours (:func:`engine.analysis.form.track_form` on the engine's beat grid
and shared spectrum, as the pipeline runs it); librosa's agglomerative segmentation
(``librosa.segment.agglomerative`` on beat-synchronous chroma + MFCC) given the true number of
sections, its sections labelled by agglomerative clustering of their mean features given the
true number of labels; msaf 0.1.80 (``sf`` boundaries + ``fmc2d`` labels, its defaults; and
``scluster``), when it imports (it needs ``scipy.inf`` and friends, restored by a shim here;
install it with ``pip install --no-deps --target DIR msaf==0.1.80 vmo seaborn future cvxopt``
and ``PYTHONPATH=DIR``: its ``enum34`` pin would shadow Python's ``enum``).
Figures from ``mir_eval.segment``: boundary hit-rate F at 0.5 s and 3 s (the track's start
and end not counted: ``trim=True``) and pairwise label F. Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
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
SEEDS = {"train": 3000, "test": 4000}
FORMS: dict[str, list[tuple[str, str, int]]] = {
    # (function, material, bars)
    "pop": [
        ("intro", "I", 4),
        ("verse", "V", 8),
        ("chorus", "C", 8),
        ("verse", "V", 8),
        ("chorus", "C", 8),
        ("bridge", "B", 8),
        ("chorus", "C", 8),
        ("outro", "O", 4),
    ],
    "short": [
        ("intro", "I", 4),
        ("verse", "V", 8),
        ("chorus", "C", 8),
        ("verse", "V", 8),
        ("chorus", "C", 8),
        ("outro", "O", 4),
    ],
    "edm": [
        ("intro", "I", 8),
        ("build-up", "U", 4),
        ("drop", "D", 8),
        ("breakdown", "K", 8),
        ("build-up", "U", 4),
        ("drop", "D", 8),
        ("outro", "O", 8),
    ],
    "ababcb": [
        ("verse", "A", 8),
        ("chorus", "B", 8),
        ("verse", "A", 8),
        ("chorus", "B", 8),
        ("bridge", "X", 8),
        ("chorus", "B", 8),
    ],
}
PROGRESSIONS = ([0, 5, 3, 4], [3, 4, 0, 5], [5, 3, 0, 4], [0, 4, 5, 3], [1, 4, 0, 0], [3, 0, 4, 4])
PADS = (0, 4, 48, 19, 24, 61, 89, 52, 16, 25)  # piano, e-piano, strings, organ, guitar, ...
LEADS = (73, 56, 65, 80, 11, 40, 71)
MAJOR = (0, 2, 4, 5, 7, 9, 11)


@dataclass
class Song:
    """A rendered song and its reference form."""

    name: str
    kind: str
    bpm: float
    starts: np.ndarray  # section start times, s
    duration_s: float
    labels: list[str]
    functions: list[str]
    y: np.ndarray

    @property
    def intervals(self) -> np.ndarray:
        return np.stack([self.starts, np.append(self.starts[1:], self.duration_s)], axis=1)


def _material(rng: np.random.Generator, function: str, used: dict[str, list]) -> dict:
    """The instruments, progression, drums, density and level of one section's material."""
    prog = used["progs"].pop(int(rng.integers(len(used["progs"]))))
    pad = used["pads"].pop(int(rng.integers(len(used["pads"]))))
    lead = used["leads"].pop(int(rng.integers(len(used["leads"]))))
    drums, density, vel, bass = {
        "intro": (0, 0.15, 60, False),
        "outro": (0, 0.15, 58, False),
        "verse": (1, 0.35, 78, True),
        "chorus": (2, 0.6, 105, True),
        "bridge": (3, 0.3, 85, True),
        "build-up": (4, 0.5, 80, True),
        "drop": (5, 0.5, 112, True),
        "breakdown": (0, 0.25, 62, False),
    }[function]
    return {
        "prog": prog,
        "pad": pad,
        "lead": lead,
        "drums": drums,
        "density": density,
        "vel": vel,
        "bass": bass,
        "stabs": function in ("chorus", "drop", "build-up"),
    }


def render_song(rng: np.random.Generator, name: str, kind: str, tmp: Path) -> Song:
    """One song of ``kind`` (see the module doc) and its reference sections."""
    import make_vocal_set as kit

    bpm = float(rng.uniform(90, 135))
    beat = 60.0 / bpm
    bar_s = 4 * beat
    tonic = int(rng.integers(0, 12))
    used = {"progs": list(PROGRESSIONS), "pads": list(PADS), "leads": list(LEADS)}
    materials: dict[str, dict] = {}
    events: dict[tuple[str, int], list] = {}
    starts, labels, functions = [], [], []
    t = 0.0
    for function, mat, bars in FORMS[kind]:
        if mat not in materials:
            materials[mat] = _material(rng, function, used)
        m = materials[mat]
        starts.append(t)
        labels.append(mat)
        functions.append(function)
        for bar in range(bars):
            tb = t + bar * bar_s
            deg = m["prog"][bar % 4]
            root = tonic + MAJOR[deg]
            triad = [60 + (tonic + MAJOR[(deg + k) % 7]) % 12 for k in (0, 2, 4)]
            ramp = (bar + 1) / bars if m["drums"] == 4 else 1.0
            vel = int(m["vel"] * (0.6 + 0.4 * ramp))
            pad = events.setdefault(("pad", m["pad"]), [])
            if m["stabs"]:
                for k in range(4):
                    pad.extend((p, tb + k * beat, beat * 0.6, vel) for p in triad)
            else:
                pad.extend((p, tb, bar_s * 0.98, vel) for p in triad)
            if m["bass"]:
                bass = events.setdefault(("bass", 33), [])
                for k in range(4 if m["drums"] != 3 else 2):
                    step = beat * (1 if m["drums"] != 3 else 2)
                    bass.append((36 + root % 12, tb + k * step, step * 0.9, vel))
            lead = events.setdefault(("lead", m["lead"]), [])
            for s in range(8):
                if rng.random() < m["density"]:
                    pitch = 72 + (tonic + MAJOR[int(rng.integers(0, 7))]) % 12
                    lead.append((pitch, tb + s * beat / 2, beat / 2, min(127, vel + 5)))
            drums = events.setdefault(("drums", -1), [])
            d = m["drums"]
            for k in range(4):
                tk = tb + k * beat
                if d == 1:  # light: kick on 1, rim on 3, hats on beats
                    if k == 0:
                        drums.append((36, tk, 0.1, 90))
                    if k == 2:
                        drums.append((37, tk, 0.1, 70))
                    drums.append((42, tk, 0.05, 60))
                elif d == 2:  # full: kick 1 and 3, snare 2 and 4, eighth hats, crash on 1
                    drums.append((36 if k % 2 == 0 else 38, tk, 0.1, 115))
                    drums.extend((42, tk + h * beat / 2, 0.05, 80) for h in range(2))
                    if k == 0 and bar % 4 == 0:
                        drums.append((49, tk, 0.3, 100))
                elif d == 3:  # half time: kick on 1, snare on 3, ride
                    if k in (0, 2):
                        drums.append((36 if k == 0 else 38, tk, 0.1, 100))
                    drums.append((51, tk, 0.1, 75))
                elif d == 4:  # build-up: snare rolls getting denser
                    rate = 1 + (bar * 4 + k) * 4 // (bars * 4)
                    drums.extend(
                        (38, tk + r * beat / rate, 0.05, int(60 + 60 * ramp)) for r in range(rate)
                    )
                elif d == 5:  # four on the floor, open hats off the beat, clap on 2 and 4
                    drums.append((36, tk, 0.1, 120))
                    drums.append((46, tk + beat / 2, 0.1, 90))
                    if k % 2 == 1:
                        drums.append((39, tk, 0.1, 100))
        t += bars * bar_s
    duration = t + 1.0
    kit.SR = SR
    kit.CLIP_S = duration
    parts = [(prog, ev) for (_, prog), ev in events.items() if ev]
    y = kit.render(parts, tmp)
    y = (y / (np.abs(y).max() + 1e-9) * 0.7).astype(np.float32)
    q = [round(s * 48) / 48 for s in starts]
    return Song(name, kind, round(bpm, 2), np.array(q), duration, labels, functions, y)


def songs(n_per_kind: int, split: str, cache: Path) -> list[Song]:
    """The rendered set (cached as .npz under ``cache``)."""
    return cached_renders(FORMS, n_per_kind, split, SEEDS[split], cache, render_song, _saved, _song)


def _saved(s: Song) -> dict[str, np.ndarray]:
    return {
        "bpm": s.bpm,
        "starts": s.starts,
        "duration": s.duration_s,
        "labels": np.array(s.labels),
        "functions": np.array(s.functions),
        "y": s.y,
    }


def _song(name: str, kind: str, z: dict[str, np.ndarray]) -> Song:
    labels = [str(x) for x in z["labels"]]
    functions = [str(x) for x in z["functions"]]
    return Song(
        name, kind, float(z["bpm"]), z["starts"], float(z["duration"]), labels, functions, z["y"]
    )


# --- methods ------------------------------------------------------------------------------


@dataclass
class Estimate:
    intervals: np.ndarray
    labels: list[str]
    functions: list[str | None] | None = None
    seconds: float = 0.0


def ours(y: np.ndarray, sr: int, n_sections: int, n_labels: int) -> Estimate:
    from engine import audio
    from engine.analysis.beats import GRID_SR, track_beats
    from engine.analysis.form import track_form
    from engine.analysis.frames import track_frames

    x = audio.resample(y, sr=sr, target_sr=GRID_SR)
    grid = track_beats(x, sr=GRID_SR)
    t0 = time.perf_counter()
    frames = track_frames(x, sr=GRID_SR)
    form = track_form(frames, duration_s=y.size / sr, grid=grid)
    seconds = time.perf_counter() - t0
    iv = np.array([[s.start_s, s.end_s] for s in form])
    return Estimate(iv, [s.label for s in form], [s.function for s in form], seconds)


def _librosa_features(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    hop = 512
    _, beats = librosa.beat.beat_track(y=y, sr=sr, hop_length=hop)
    chroma = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, hop_length=hop, n_mfcc=13)
    feats = np.vstack([librosa.util.normalize(chroma, axis=0), mfcc / (np.abs(mfcc).max() + 1e-9)])
    sync = librosa.util.sync(feats, beats, aggregate=np.median)
    times = librosa.frames_to_time(
        librosa.util.fix_frames(beats, x_max=feats.shape[1]), sr=sr, hop_length=hop
    )
    return sync, times


def _cluster_labels(sync: np.ndarray, bounds: np.ndarray, n_labels: int) -> list[str]:
    from sklearn.cluster import AgglomerativeClustering

    means = np.stack([sync[:, a:b].mean(axis=1) for a, b in itertools.pairwise(bounds)])
    if len(means) <= n_labels:
        return [chr(65 + i) for i in range(len(means))]
    ids = AgglomerativeClustering(n_clusters=n_labels).fit_predict(means)
    return [chr(65 + int(i)) for i in ids]


def librosa_agglomerative(y: np.ndarray, sr: int, n_sections: int, n_labels: int) -> Estimate:
    import librosa

    t0 = time.perf_counter()
    sync, times = _librosa_features(y, sr)
    k = min(n_sections, sync.shape[1])
    starts = librosa.segment.agglomerative(sync, k)
    bounds = np.append(starts, sync.shape[1])
    t = np.append(times[np.minimum(starts, times.size - 1)], y.size / sr)
    t[0] = 0.0
    iv = np.stack([t[:-1], t[1:]], axis=1)
    labels = _cluster_labels(sync, bounds, n_labels)
    return Estimate(iv, labels, None, time.perf_counter() - t0)


def _msaf() -> object | None:
    try:
        import scipy

        for name in ("inf", "nan", "sqrt", "log", "exp", "dot", "zeros", "ones", "array"):
            if not hasattr(scipy, name):
                setattr(scipy, name, getattr(np, name))
        import msaf
    except Exception as exc:  # a baseline that does not import is reported, not fatal
        print(f"msaf not available: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return msaf


def msaf_method(boundaries_id: str, labels_id: str) -> Callable[..., Estimate]:
    def run(y: np.ndarray, sr: int, n_sections: int, n_labels: int) -> Estimate:
        import soundfile as sf

        msaf = _msaf()
        assert msaf is not None
        here = Path.cwd()
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "song.wav"
            sf.write(wav, y, sr)
            os.chdir(tmp)  # msaf writes its feature cache to the working folder
            try:
                t0 = time.perf_counter()
                b, lab = msaf.process(  # type: ignore[attr-defined]
                    str(wav), boundaries_id=boundaries_id, labels_id=labels_id, n_jobs=1
                )
                seconds = time.perf_counter() - t0
            finally:
                os.chdir(here)
        b = np.asarray(b, dtype=float)
        iv = np.stack([b[:-1], b[1:]], axis=1)
        return Estimate(iv, [str(x) for x in lab], None, seconds)

    return run


def methods(with_msaf: bool) -> dict[str, Callable[..., Estimate]]:
    out: dict[str, Callable[..., Estimate]] = {
        "ours": ours,
        "librosa agglomerative (true k)": librosa_agglomerative,
    }
    if with_msaf and _msaf() is not None:
        out["msaf sf + fmc2d"] = msaf_method("sf", "fmc2d")
        out["msaf scluster"] = msaf_method("scluster", "scluster")
    return out


# --- metrics ------------------------------------------------------------------------------


def scores(
    ref_iv: np.ndarray, ref_lab: list[str], est: Estimate, duration_s: float
) -> dict[str, float]:
    import mir_eval

    est_iv, est_lab = mir_eval.util.adjust_intervals(
        est.intervals, list(est.labels), t_min=0.0, t_max=duration_s
    )
    ref_iv2, ref_lab2 = mir_eval.util.adjust_intervals(
        ref_iv, list(ref_lab), t_min=0.0, t_max=duration_s
    )
    out = {}
    for w in (0.5, 3.0):
        _, _, f = mir_eval.segment.detection(ref_iv2, est_iv, window=w, trim=True)
        out[f"F@{w:g}"] = float(f)
    _, _, f = mir_eval.segment.pairwise(ref_iv2, ref_lab2, est_iv, est_lab)
    out["pairwise F"] = float(f)
    out["sections"] = float(len(est.labels))
    out["s"] = est.seconds
    return out


def table(rows: dict[str, dict[str, list[float]]], title: str) -> list[str]:
    out = [
        title,
        "| method | boundary F@0.5 s | boundary F@3 s | pairwise label F | sections | s per song |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        out.append(
            f"| {name} | {np.mean(r['F@0.5']):.3f} | {np.mean(r['F@3']):.3f} | "
            f"{np.mean(r['pairwise F']):.3f} | {np.mean(r['sections']):.1f} | "
            f"{np.mean(r['s']):.3f} |"
        )
    return out


def rendered(set_: list[Song], meths: dict[str, Callable[..., Estimate]], verbose: bool) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    fn_hits: list[float] = []
    for s in set_:
        n_lab = len(set(s.labels))
        for name, fn in meths.items():
            e = fn(s.y, SR, len(s.labels), n_lab)
            sc = scores(s.intervals, s.labels, e, s.duration_s)
            for k, v in sc.items():
                rows.setdefault(name, {}).setdefault(k, []).append(v)
            if name == "ours":
                if verbose:
                    ref = list(zip(np.round(s.starts, 1).tolist(), s.labels, strict=True))
                    est = list(zip(np.round(e.intervals[:, 0], 1).tolist(), e.labels, strict=True))
                    print(
                        f"{s.name}: ref {ref}\n   est {est} {e.functions}\n   {sc}", file=sys.stderr
                    )
                if len(e.labels) == len(s.labels):
                    fn_hits.extend(
                        float(f == g) for f, g in zip(e.functions or [], s.functions, strict=False)
                    )
    print(
        "\n".join(
            table(
                rows,
                f"Rendered songs ({len(set_)}: {', '.join(FORMS)}; one key and tempo each; "
                "synthetic)",
            )
        )
    )
    if fn_hits:
        print(
            f"\nours, functions right where the section count is right: "
            f"{np.mean(fn_hits):.2f} ({int(sum(fn_hits))}/{len(fn_hits)})"
        )


def narrative_check(song: Song) -> None:
    """The whole lite pipeline (tagger off) on a rendered verse-chorus song: is the narrative
    told by section, each section named once and in order, and is the chorus's return said?"""
    from dataclasses import replace

    from engine import audio, presets
    from engine.backends.lite import LiteBackend
    from engine.pipeline import Annotator

    preset = presets.load("lite")
    preset = replace(preset, options=replace(preset.options, tag=False))
    annotator = Annotator(preset, store=None, backend=LiteBackend(preset))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{song.name}.wav"
        audio.write(path, song.y, sr=SR, subtype="FLOAT")
        result = annotator.annotate(str(path), use_cache=False)
    annotator.close()
    text = result.narrative.text
    spans = [(s.start_s, s.end_s) for s in result.narrative.sections]
    in_order = spans == [(s.start_s, s.end_s) for s in result.form]
    found = [re.match(r"[\d:]+-[\d:]+ (.+?): ", t.text) for t in result.narrative.sections]
    heads = [h.group(1) if h else "" for h in found]
    # each section is named once: a head is said as often as there are sections it names
    once = all(
        h and text.count(f" {h}:") + text.startswith(f"{h}:") == heads.count(h) for h in heads
    )
    chorus = [s for s in result.form if s.function == "chorus"]
    returns = len(chorus) < 2 or "the chorus returns" in text
    print(f"\nNarrative of {song.name} (rendered; reference {' '.join(song.functions)}):")
    print(f"  {text}")
    print(
        f"  one sentence per section, in order: {in_order}; each named once: {once}; "
        f"the chorus's return said: {returns}"
    )


def real(cache: Path, meths: dict[str, Callable[..., Estimate]]) -> None:
    import jams

    from engine import audio

    pairs = sorted(cache.glob("*.jams"))
    if not pairs:
        print(f"\n(no real recordings under {cache})")
        return
    rows: dict[str, dict[str, list[float]]] = {}
    for ref in pairs:
        mp3 = next(iter(cache.glob(ref.stem + ".*[!s]")), None)
        if mp3 is None:
            continue
        j = jams.load(str(ref), validate=False)
        ann = j.search(namespace="segment_open")[0]
        iv = np.array([[o.time, o.time + o.duration] for o in ann.data])
        lab = [str(o.value) for o in ann.data]
        a = audio.load(str(mp3), max_sr=44100)
        y = audio.resample(audio.to_mono(a.samples), sr=a.sr, target_sr=SR)
        for name, fn in meths.items():
            e = fn(y, SR, len(lab), len(set(lab)))
            sc = scores(iv, lab, e, y.size / SR)
            for k, v in sc.items():
                rows.setdefault(name, {}).setdefault(k, []).append(v)
    print()
    print("\n".join(table(rows, f"Real recordings with annotated sections ({len(pairs)})")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--songs", type=int, default=3, help="songs per form")
    ap.add_argument("--split", choices=tuple(SEEDS), default="test")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--no-msaf", action="store_true")
    ap.add_argument("--only-ours", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="each song's sections, to stderr")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "data" / "form")
    ap.add_argument("--real", type=Path, default=ROOT / "bench" / "data" / "form_real")
    args = ap.parse_args()
    meths = methods(not args.no_msaf and not args.only_ours)
    if args.only_ours:
        meths = {"ours": ours}
    set_ = songs(args.songs, args.split, args.cache)
    rendered(set_, meths, args.verbose)
    narrative_check(next(s for s in set_ if s.kind == "pop"))
    if not args.no_real:
        real(args.real, meths)


if __name__ == "__main__":
    main()
