"""Key and vocals on real recordings: ours beside essentia's KeyExtractor, in one run.

Reads ``../shared/realaudio2`` and ``../shared/realaudio`` in place (never copied). Every file
is cut into the default 10 s regions and analysed by the ``lite`` backend, then decoded over
the track (:func:`engine.track.resolve`), as ``sonicverse annotate`` does. Prints:

- **track key**: MIREX weighted score (mir_eval) of the track's key against the reference,
  ours (the key that the decoded regions hold longest; "no clear key" scores 0) beside
  essentia's KeyExtractor on the whole file with the ``bgate``, ``edma`` and ``temperley``
  profiles. Two reference sets: *annotated* (the data set's annotation, a source's statement
  or a listener's judgement) and *all* (adds the keys of ``realaudio`` that are essentia bgate
  estimates, which favour that profile by construction);
- **"no clear key"**: tracks decoded "no clear key" (most of their audible regions) among the
  tonal files and among the atonal ones (drum and percussion stems, speech);
- **vocals per region** on the songs whose sung lines are timed (``*.lines.csv``): a 10 s
  region is *sung* when the lines cover >= 3 s of it, *instrumental* when < 0.5 s, else not
  scored; accuracy and the confusion matrix of the decoded vocals, the Brier score of each
  region's own P(vocals) (its calibration), and each song's regions as told, for the tagger
  on one, two and every 3 s patch per region, decoded over the track and each region alone
  (a DAW's region request, tagged on ``max_patches_alone`` patches);
- clip-level vocals of the other files (a-cappella singing, instrumentals, speech);
- **region requests**: each 10 s region decoded alone, as a DAW's region request is (no track
  read): its key MIREX against the track's key and the "no clear key" counts on tonal and
  atonal files, without chords (as region requests were told before they read their own) and
  with the chords the region reads from its own samples. Also printed for ``--beatles`` and
  ``--gtzan``.

``--beatles DIR`` adds the track key on Beatles songs with Isophonics key annotations (the key
held longest in each song's key lab; ``<album>/<NN-song>.mp3`` beside ``<NN-song>.key``, one
line ``"E major"``; see ``docs/benchmarks.md`` for where they come from), ours beside essentia
in the same run. ``--beatles-split``: ``dev`` (odd track numbers, the songs anything may be
chosen on), ``test`` (even track numbers but the second, on which the chord recogniser's
constants were chosen; reported) or ``all``.

``--gtzan DIR`` adds the track key on GTZAN clips with Kraft & Lerch's key annotations
(``<genre>.<NNNNN>.wav`` beside ``<genre>.<NNNNN>.key``, one line ``"E minor"``; see
``docs/benchmarks.md``), per genre, ours beside essentia. ``--gtzan-split``: ``dev`` (clip
numbers ending in 0-4), ``test`` (5-9) or ``all``. ``--no-shared`` skips the shared
recordings.

Usage::

    python bench/real.py [--real2 ../shared/realaudio2] [--real ../shared/realaudio]
    python bench/real.py --beatles bench/data/beatles-keys --beatles-split test [--no-shared]
    python bench/real.py --gtzan bench/data/gtzan-keys --gtzan-split test --no-shared

essentia is imported only here: it is a baseline, never a runtime dependency.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import annotated, default_segments, table, track_key

from engine import presets
from engine.audio import load, resample, to_mono
from engine.labels import KEYS
from engine.pipeline import carry_chords, region_chords, track_chords_of
from engine.track import resolve
from engine.types import RegionAnnotation

log = logging.getLogger("bench.real")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SR = 22050
REGION_S = 10.0
SUNG_S = 3.0  # a region is sung when the lines cover at least this much of it
INSTRUMENTAL_S = 0.5  # ... and instrumental when they cover less than this
ESSENTIA_PROFILES = ("bgate", "edma", "temperley")
ESSENTIA_SPELLING = {"A#": "Bb", "D#": "Eb", "G#": "Ab", "Db": "C#", "Gb": "F#"}
PATCH_SETTINGS = {"one patch": 1, "two patches": 2, "every patch": 0}  # [lite.tagger] max_patches
ALONE = "asked for alone"  # each region decoded alone, as a DAW's region request is


@dataclass(frozen=True)
class Track:
    """One real recording and what is known about it.

    Attributes:
        path: the audio file.
        key: reference key (one of :data:`KEYS`), None when unknown or modeless.
        key_annotated: True when ``key`` is an annotation, a source's statement or a
            listener's judgement, False when it is an essentia estimate.
        tonal: False for drum/percussion stems and speech (they should get "no clear key").
        vocals: clip-level vocals ("vocal", "none", "speech" or "" when unknown).
        lines: sung-line spans ``(start_s, end_s)`` when timed by hand, else None.
    """

    path: Path
    key: str | None
    key_annotated: bool
    tonal: bool
    vocals: str
    lines: tuple[tuple[float, float], ...] | None


def realaudio2(folder: Path) -> list[Track]:
    """The tracks of ``realaudio2`` (labels from the data sets' annotations)."""
    out = []
    with open(folder / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            path = folder / row["file"]
            lines_csv = path.with_suffix(".lines.csv")
            lines = None
            if lines_csv.exists():
                with open(lines_csv, encoding="utf-8") as g:
                    lines = tuple(
                        (float(r["start_time"]), float(r["end_time"])) for r in csv.DictReader(g)
                    )
            key = row["key"] or None
            out.append(
                Track(
                    path,
                    key if key in KEYS else None,
                    True,
                    tonal=row["file"].split("_")[0] != "brid",  # BRID: percussion only
                    vocals=row["vocals"],
                    lines=lines,
                )
            )
    return out


def realaudio(folder: Path) -> list[Track]:
    """The tracks of ``realaudio`` (keys mostly essentia estimates, see its README)."""
    out = []
    with open(folder / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = row["key_ref"].split(" (")[0]
            content = row["content"]
            atonal = content.startswith("speech") or content.startswith("drum")
            vocals = row["vocals"]
            out.append(
                Track(
                    folder / row["file"],
                    key if key in KEYS else None,  # "F (blues/dorian)" has no mode: not scored
                    key_annotated="estimate" not in row["key_basis"],
                    tonal=not atonal,
                    vocals="speech" if vocals.startswith("speech") else vocals,
                    lines=None,
                )
            )
    return out


def beatles(folder: Path, split: str) -> list[Track]:
    """Beatles songs with an annotated key: ``<album>/<NN-song>.mp3`` beside ``.key``."""
    out = []
    for key_file in sorted(folder.glob("*/*.key")):
        number = int(key_file.stem.split("-")[0])
        if split != "all" and (number % 2 == 1) != (split == "dev"):
            continue
        if split == "test" and number == 2:
            continue  # the chord recogniser's constants were chosen on each album's 2nd song
        out.append(keyed_track(key_file, ".mp3"))
    return out


def keyed_track(key_file: Path, suffix: str) -> Track:
    """The tonal recording ``key_file`` names (its name with ``suffix``) and its annotated key,
    the file's one line (``"E minor"``).

    Raises:
        ValueError: naming the file when its line is not one of the 24 keys.
    """
    key = key_file.read_text(encoding="utf-8").strip()
    if key not in KEYS:
        raise ValueError(f"{key_file}: {key!r} is not one of the 24 keys")
    return Track(key_file.with_suffix(suffix), key, True, tonal=True, vocals="", lines=None)


def gtzan(folder: Path, split: str) -> list[Track]:
    """GTZAN clips with an annotated key: ``<genre>.<NNNNN>.wav`` beside ``.key`` (one line,
    ``"E minor"``). ``dev``: clip numbers ending in 0-4; ``test``: 5-9; ``all``."""
    out = []
    for key_file in sorted(folder.glob("*.key")):
        number = int(key_file.stem.rsplit(".", 1)[1])
        if split != "all" and (number % 10 < 5) != (split == "dev"):
            continue
        out.append(keyed_track(key_file, ".wav"))
    return out


RegionKeys = list[tuple[str | None, str | None, str | None, str | None]]
"""Per audible region of a track: the track's reference key (None: atonal; "": tonal, key
unknown), the region's key decoded alone without chords, with the chords it reads from its
own samples, and essentia bgate's on the region ("" when not run)."""


def region_requests(
    segs: Sequence[Any],
    raw: Sequence[RegionAnnotation],
    reference: str | None,
    preset: Any,
    *,
    with_essentia: bool,
) -> RegionKeys:
    """Each audible region (whatever chords it carries) decoded alone, as a DAW's region
    request is (no track read): its key without chords (as region requests were told before
    they read them), with the chords
    it reads from its own samples (:func:`engine.pipeline.region_chords`, here on the track
    already mixed to mono at :data:`SR`, where a request reads the file's own region), and
    essentia's KeyExtractor (bgate) on the region's samples."""
    out: RegionKeys = []
    for seg, a in zip(segs, raw, strict=True):
        if a.silent:
            continue
        keys = []
        for chords in ((), region_chords(seg.audio, analysis=preset.analysis)):
            one = carry_chords([replace(a, chords=())], chords)
            told = resolve(one, settings=preset.track, analysis=preset.analysis).annotations[0]
            keys.append(told.key.key if told.key is not None else None)
        ess = essentia_keys(seg.audio.samples[0], profiles=("bgate",)) if with_essentia else {}
        out.append((reference, keys[0], keys[1], ess.get("bgate", "")))
    return out


def region_table(sets: dict[str, RegionKeys]) -> str:
    """Region requests per set: tonal regions' key MIREX against the track's key (those with
    one) and their "no clear key" count, atonal regions' "no clear key" count; before and
    now."""
    rows = []
    with_essentia = any(r[3] for regions in sets.values() for r in regions)
    for name, regions in sets.items():
        tonal = [r for r in regions if r[0] is not None]
        atonal = [r for r in regions if r[0] is None]
        keyed = [r for r in tonal if r[0]]
        row = [name, f"{len(tonal)} ({len(keyed)})", str(len(atonal))]
        for i in (1, 2):
            row.append(f"{np.mean([mirex(r[0], r[i]) for r in keyed]):.3f}" if keyed else "")
            row.append(f"{sum(r[i] is None for r in tonal)}" if tonal else "")
            row.append(f"{sum(r[i] is None for r in atonal)}" if atonal else "")
        if with_essentia:
            row.append(f"{np.mean([mirex(r[0], r[3]) for r in keyed]):.3f}" if keyed else "")
        rows.append(row)
    header = ["set", "tonal regions (with a known key)", "atonal regions"]
    for when in ("before (no chords)", "now (its own chords)"):
        header += [
            f"{when}: key MIREX",
            f"{when}: no clear key, tonal",
            f"{when}: no clear key, atonal",
        ]
    if with_essentia:
        header.append("essentia bgate on the region: key MIREX")
    return table(header, rows)


def track_keys(
    tracks: Sequence[Track],
    backend: object,
    preset: presets.Preset,
    *,
    with_essentia: bool,
    regions: RegionKeys | None = None,
) -> tuple[dict[str, list[float]], list[list[str]]]:
    """Track key of each track, ours (decoded over its regions) beside essentia's: the MIREX
    scores per method and a row per track; each region as a region request into ``regions``
    when given (:func:`region_requests`)."""
    scores: dict[str, list[float]] = {}
    rows = []
    for tr in tracks:
        clip = load(tr.path)
        y = resample(to_mono(clip.samples), sr=clip.sr, target_sr=SR)
        raw = annotated(backend, y, SR, tr.path.name)
        ours = track_key(resolve(raw, settings=preset.track, analysis=preset.analysis).annotations)
        if regions is not None:
            segs = default_segments(y, SR, tr.path.name, length_s=REGION_S)
            regions += region_requests(segs, raw, tr.key, preset, with_essentia=with_essentia)
        ess = essentia_keys(y) if with_essentia else {}
        assert tr.key is not None
        for method, est in {"ours": ours, **{f"essentia {p}": k for p, k in ess.items()}}.items():
            scores.setdefault(method, []).append(mirex(tr.key, est))
        rows.append(
            [
                f"{tr.path.parent.name[:12]}/{tr.path.stem[:24]}",
                tr.key,
                ours or "no clear key",
                *[ess.get(p, "") for p in ESSENTIA_PROFILES],
            ]
        )
    return scores, rows


def mirex(reference: str, estimate: str | None) -> float:
    """mir_eval's weighted key score; 0 for no estimate."""
    import mir_eval

    if estimate is None:
        return 0.0
    return float(mir_eval.key.weighted_score(reference, estimate))


def essentia_keys(y: np.ndarray, *, profiles: Sequence[str] = ESSENTIA_PROFILES) -> dict[str, str]:
    """essentia KeyExtractor on the whole signal (at :data:`SR`), per profile."""
    import essentia
    import essentia.standard as es
    import soxr

    essentia.log.infoActive = False
    y44 = soxr.resample(y, SR, 44100).astype(np.float32)
    out = {}
    for profile in profiles:
        tonic, scale, _ = es.KeyExtractor(profileType=profile, sampleRate=44100)(y44)
        out[profile] = f"{ESSENTIA_SPELLING.get(tonic, tonic)} {scale}"
    return out


def sung_seconds(lines: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """How much of ``[start, end)`` the sung lines cover."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in lines)


def region_truth(lines: Sequence[tuple[float, float]], a: RegionAnnotation) -> bool | None:
    """True when the region is sung, False when instrumental, None when not scored."""
    s = sung_seconds(lines, a.start_s, a.end_s)
    return True if s >= SUNG_S else False if s < INSTRUMENTAL_S else None


def sung(a: RegionAnnotation) -> bool | None:
    return None if a.vocals is None else a.vocals.label != "none"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real2", type=Path, default=SHARED / "realaudio2")
    ap.add_argument("--real", type=Path, default=SHARED / "realaudio")
    ap.add_argument("--no-essentia", action="store_true")
    ap.add_argument("--beatles", type=Path, help="Beatles songs with .key files (track key only)")
    ap.add_argument("--beatles-split", choices=("dev", "test", "all"), default="test")
    ap.add_argument(
        "--no-shared",
        "--beatles-only",
        dest="no_shared",
        action="store_true",
        help="only the --beatles and --gtzan sets: skip the shared recordings",
    )
    ap.add_argument("--gtzan", type=Path, help="GTZAN clips with .key files (track key only)")
    ap.add_argument("--gtzan-split", choices=("dev", "test", "all"), default="test")
    ap.add_argument(
        "--chordless",
        type=float,
        help="[track] min_tonality_chordless for this run (how the shipped value was checked)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from engine import backends

    preset = presets.load("lite")
    if args.chordless is not None:
        preset = replace(preset, track=replace(preset.track, min_tonality_chordless=args.chordless))
    lite = backends.create(preset)
    if args.beatles is not None:
        songs = beatles(args.beatles, args.beatles_split)
        beatles_regions: RegionKeys = []
        scores, rows = track_keys(
            songs, lite, preset, with_essentia=not args.no_essentia, regions=beatles_regions
        )
        print(
            f"\nTrack key on the Beatles, Isophonics annotations ({args.beatles_split} split, "
            f"{len(songs)} songs, real; MIREX weighted, 'no clear key' scores 0)"
        )
        print(table(list(scores), [[f"{np.mean(v):.3f}" for v in scores.values()]]))
        exact = {m: sum(v == 1.0 for v in vs) for m, vs in scores.items()}
        print("exactly right: " + ", ".join(f"{m} {n}/{len(songs)}" for m, n in exact.items()))
        print(table(["song", "reference", "ours", *ESSENTIA_PROFILES], rows))
        print("\nRegion requests on the same songs (each 10 s region decoded alone)")
        print(region_table({f"Beatles {args.beatles_split}": beatles_regions}))
    if args.gtzan is not None:
        clips = gtzan(args.gtzan, args.gtzan_split)
        by_genre: dict[str, list[Track]] = {}
        for tr in clips:
            by_genre.setdefault(tr.path.stem.split(".")[0], []).append(tr)
        genre_rows: list[list[str]] = []
        all_scores: dict[str, list[float]] = {}
        all_rows: list[list[str]] = []
        gtzan_regions: RegionKeys = []
        for genre, tracks in by_genre.items():
            scores, rows = track_keys(
                tracks, lite, preset, with_essentia=not args.no_essentia, regions=gtzan_regions
            )
            genre_rows.append(
                [f"{genre} ({len(tracks)})", *(f"{np.mean(v):.3f}" for v in scores.values())]
            )
            for m, v in scores.items():
                all_scores.setdefault(m, []).extend(v)
            all_rows += rows
        genre_rows.append(
            [f"all ({len(clips)})", *(f"{np.mean(v):.3f}" for v in all_scores.values())]
        )
        told_none = sum(r[2] == "no clear key" for r in all_rows)
        print(
            f"\nTrack key on GTZAN clips, Kraft & Lerch annotations ({args.gtzan_split} split, "
            f"{len(clips)} clips, real; MIREX weighted, 'no clear key' scores 0)"
        )
        print(table(["genre (clips)", *all_scores], genre_rows))
        print(f"'no clear key' on {told_none} of {len(clips)} tonal clips")
        print(table(["clip", "reference", "ours", *ESSENTIA_PROFILES], all_rows))
        print("\nRegion requests on the same clips (each 10 s region decoded alone)")
        print(region_table({f"GTZAN {args.gtzan_split}": gtzan_regions}))
    if args.no_shared:
        lite.close()
        return
    # the other patch setting shares the loaded networks
    from engine.tagging import Tagger

    variants = {}
    for label, patches in PATCH_SETTINGS.items():
        settings = replace(preset.options.tagger, max_patches=patches)
        opts = replace(preset.options, tagger=settings)
        tagger = Tagger(settings, lite.tagger.models)
        variants[label] = type(lite)(replace(preset, options=opts), tagger=tagger)
    shipped = next(k for k, v in PATCH_SETTINGS.items() if v == preset.options.tagger.max_patches)

    tracks = [*realaudio2(args.real2), *realaudio(args.real)]
    keys: list[list[str]] = []
    key_scores: dict[str, dict[str, list[float]]] = {}
    no_key = {True: [0, 0], False: [0, 0]}  # tonal -> [no clear key, files]
    alone_rows = [f"{ALONE}, {label}" for label in PATCH_SETTINGS]
    vocal_rows, confusion = [], {v: Counter() for v in [*PATCH_SETTINGS, *alone_rows]}
    clip_vocals = []
    per_song: dict[str, list[str]] = {}
    unclear: list[str] = []
    brier: dict[str, list[float]] = {v: [] for v in [*PATCH_SETTINGS, *alone_rows]}
    seconds, t_ours = 0.0, 0.0
    shared_regions: RegionKeys = []
    for tr in tracks:
        clip = load(tr.path)
        y = resample(to_mono(clip.samples), sr=clip.sr, target_sr=SR)
        seconds += y.size / SR
        segs = default_segments(y, SR, tr.path.name, length_s=REGION_S)
        t0 = time.perf_counter()
        chords = track_chords_of(y, sr=SR, analysis=preset.analysis)
        t_ours += time.perf_counter() - t0
        decoded = {}
        bares = {}
        for label, backend in variants.items():
            t0 = time.perf_counter()
            bare = backend.analyze(segs)
            bares[label] = bare
            res = resolve(
                carry_chords(bare, chords), settings=preset.track, analysis=preset.analysis
            )
            if label == shipped:
                t_ours += time.perf_counter() - t0
                reference = None if not tr.tonal else tr.key or ""
                shared_regions += region_requests(
                    segs, bare, reference, preset, with_essentia=not args.no_essentia
                )
            decoded[label] = res.annotations
        ours = track_key(decoded[shipped])
        no_key[tr.tonal][0] += ours is None
        if (ours is None) == tr.tonal:
            tonality = [a.region_key.tonality for a in decoded[shipped] if a.region_key]
            unclear.append(f"{tr.path.name[:24]} (tonality {np.round(tonality, 3).tolist()})")
        no_key[tr.tonal][1] += 1
        ess = {} if args.no_essentia else essentia_keys(y)
        if tr.key is not None:
            sets = ["all"] + (["annotated"] if tr.key_annotated else [])
            for method, est in {
                "ours": ours,
                **{f"essentia {p}": k for p, k in ess.items()},
            }.items():
                for s in sets:
                    key_scores.setdefault(s, {}).setdefault(method, []).append(mirex(tr.key, est))
            keys.append(
                [
                    tr.path.name[:34],
                    tr.key + ("" if tr.key_annotated else " (est.)"),
                    ours or "no clear key",
                    *[ess.get(p, "") for p in ESSENTIA_PROFILES],
                ]
            )
        if tr.lines is not None:
            for label, bare in bares.items():  # each region decoded alone
                decoded[f"{ALONE}, {label}"] = tuple(
                    resolve([a], settings=preset.track, analysis=preset.analysis).annotations[0]
                    for a in bare
                )
            for label, regions in decoded.items():
                said = []
                for a in regions:
                    truth = region_truth(tr.lines, a)
                    if truth is None or a.silent:
                        said.append(".")
                        continue
                    pred = sung(a)
                    confusion[label][(truth, pred)] += 1
                    assert a.vocals is not None
                    brier[label].append((1.0 - a.vocals.probabilities[0] - truth) ** 2)
                    said.append(("V" if pred else "-") if pred == truth else ("v" if pred else "x"))
                per_song.setdefault(tr.path.name[:34], []).append("".join(said))
        elif tr.vocals:
            labels = Counter(a.vocals.label for a in decoded[shipped] if a.vocals is not None)
            clip_vocals.append(f"{tr.path.name[:24]} ({tr.vocals}): {dict(labels)}")

    print(
        f"{len(tracks)} real recordings, {seconds / 60:.1f} min; lite (shipped, {shipped}) "
        f"{seconds / max(t_ours, 1e-9):.0f}x real time incl. the tagger"
    )
    print("\nTrack key (MIREX weighted; 'no clear key' scores 0)")
    methods = ["ours", *[f"essentia {p}" for p in ESSENTIA_PROFILES if not args.no_essentia]]
    print(
        table(
            ["reference set", *methods],
            [
                [f"{s} ({len(key_scores[s]['ours'])} tracks)"]
                + [f"{np.mean(key_scores[s][m]):.3f}" for m in methods]
                for s in ("annotated", "all")
                if s in key_scores
            ],
        )
    )
    print(table(["file", "reference", "ours", *ESSENTIA_PROFILES], keys))
    print(
        f"\n'no clear key': tonal {no_key[True][0]}/{no_key[True][1]} tracks, "
        f"atonal {no_key[False][0]}/{no_key[False][1]} tracks"
    )
    for line in unclear:
        print("  wrong: " + line)
    print("\nRegion requests (each 10 s region decoded alone, as a DAW asks for one)")
    print(region_table({"shared recordings": shared_regions}))
    print(
        "\nVocals per 10 s region, songs with timed sung lines (sung >= 3 s, instrumental < 0.5 s)"
    )
    shipped_alone = next(
        k for k, v in PATCH_SETTINGS.items() if v == preset.options.tagger.max_patches_alone
    )
    for label in [*PATCH_SETTINGS, *alone_rows]:
        c = confusion[label]
        n = sum(c.values())
        right = c[(True, True)] + c[(False, False)]
        ships = label in (shipped, f"{ALONE}, {shipped_alone}")
        vocal_rows.append(
            [
                label + (" (shipped)" if ships else ""),
                f"{right}/{n} ({right / max(n, 1):.0%})",
                str(c[(True, True)]),
                str(c[(True, False)]),
                str(c[(False, True)]),
                str(c[(False, False)]),
                f"{np.mean(brier[label]):.3f}",
            ]
        )
    print(
        table(
            [
                "tagger",
                "right",
                "sung->vocals",
                "sung->none",
                "instr.->vocals",
                "instr.->none",
                "Brier P(vocals)",
            ],
            vocal_rows,
        )
    )
    print(
        "per song (V/- right, v/x wrong, . not scored), "
        + " | ".join([*PATCH_SETTINGS, *alone_rows])
    )
    for name, said in per_song.items():
        print(f"  {name:34s} " + " | ".join(said))
    print("\nClip-level vocals (decoded regions):")
    for line in clip_vocals:
        print("  " + line)
    for backend in variants.values():
        backend.close()
        assert backend.tagger is not None
        backend.tagger.close()  # the variants share the networks, not the threads
    lite.close()


if __name__ == "__main__":
    main()
