"""Throughput of the `lite` pipeline on a 3-minute track, beside librosa doing the same jobs.

Run: ``python bench/throughput.py [--audio FILE] [--repeat N]``. The default track is the
shipped demo (docs/demo/demo.flac) looped to 3:00, 44.1 kHz stereo. Prints one table:
seconds of audio analysed per wall second (x real time) for key, tempo and loudness over
10 s regions, for our analysers and for the baselines run in the same process (librosa
chroma_cqt + Krumhansl profile for key, librosa beat tracking for tempo, pyloudnorm's Meter
for loudness), with the ratio; then the whole `sonicverse annotate`
pipeline (decode, analysis, store, narrative) uncached and cached, and the same regions asked
for one at a time as a DAW does (``region/annotate``: each region reads its own chords).

Then the busy-studio table: the whole pipeline with the tagger, uncached, for the new path
(musicnn in ONNX Runtime, workers that sleep instead of spin, the preset's one 3 s patch per
region), the same on every patch, and the old tagger settings (musicnn in PyTorch, OpenMP's
default spinning waits, every patch), on idle cores and while a busy loop started by this
benchmark holds one core (it is stopped after). The wait policy is read once per process, when
torch loads, so each configuration runs in a child process of this one run, interleaved; the
rows give best-of-``--repeat`` wall times in-process, plus best-of-``--repeat`` ``sonicverse
annotate`` end to end (process start included), and the ratios that matter: new vs old,
contended vs idle.
``--pipeline-only`` skips the per-stage table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import busy_loop, lite_preset_file

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def librosa_key(y: np.ndarray, sr: int) -> int:
    """chroma_cqt + Krumhansl-Schmuckler: the usual librosa recipe."""
    import librosa

    major = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
    minor = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
    chroma = librosa.feature.chroma_cqt(y=y, sr=sr).mean(axis=1)
    scores = [np.corrcoef(chroma, np.roll(p, k))[0, 1] for p in (major, minor) for k in range(12)]
    return int(np.argmax(scores))


PATHS: dict[str, tuple[str, str, int | None]] = {
    # label -> (tagger runtime, OMP_WAIT_POLICY, tagger max_patches; None: the preset's)
    "new": ("auto", "PASSIVE", None),
    "new, every patch": ("auto", "PASSIVE", 0),
    "old": ("torch", "ACTIVE", 0),
}
"""The configurations compared. All run today's pipeline (the tagger on a worker thread beside
the signal analysis, one BLAS thread); ``old`` has the tagger settings from before the ONNX path."""


def slug(label: str) -> str:
    """A configuration's label as a file-name part."""
    return re.sub(r"\W+", "_", label)


def tagger_overrides(label: str) -> dict[str, object]:
    """The ``[lite.tagger]`` values a configuration changes."""
    runtime, _, max_patches = PATHS[label]
    out: dict[str, object] = {"runtime": runtime}
    if max_patches is not None:
        out["max_patches"] = max_patches
    return out


def child_pipeline(path: str, label: str, repeat: int) -> None:
    """In a child process: time ``Annotator.annotate`` (uncached) and print JSON."""
    from dataclasses import replace

    from engine import presets
    from engine.pipeline import Annotator

    preset = presets.load("lite")
    tagger = replace(preset.options.tagger, **tagger_overrides(label))  # type: ignore[arg-type]
    preset = replace(preset, options=replace(preset.options, tagger=tagger))
    t0 = time.perf_counter()
    ann = Annotator(preset, store=None)
    load_s = time.perf_counter() - t0
    ann.annotate(path, use_cache=False)  # first call: lazy imports, allocations
    best = best_of(lambda: ann.annotate(path, use_cache=False), repeat)
    ann.close()
    kinds = sorted({type(m).__name__ for m in ann.backend.tagger.models.values()})  # type: ignore[attr-defined]
    print(json.dumps({"load_s": load_s, "annotate_s": best, "nets": kinds}))


def run_child(path: Path, label: str, repeat: int) -> dict[str, object]:
    policy = PATHS[label][1]
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            label,
            "--audio",
            str(path),
            "--repeat",
            str(repeat),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(path: Path, label: str, preset: Path) -> float:
    """Wall seconds of ``python -m engine.cli annotate`` (process start included)."""
    policy = PATHS[label][1]
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "annotate",
            str(path),
            "--no-cache",
            "--preset",
            str(preset),
            "--store",
            str(path.with_suffix(f".{slug(label)}.sqlite3")),
            "--format",
            "json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - t0


def busy_studio(track: np.ndarray, sr: int, seconds: float, repeat: int) -> None:
    """The idle / contended x new / old table (see the module docstring)."""
    import soundfile as sf
    from rich.console import Console
    from rich.table import Table

    console = Console(width=130)
    rows: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "track.flac"
        sf.write(path, track.T, sr)
        preset_files = {}
        for label in PATHS:
            preset_files[label] = lite_preset_file(
                Path(d), f"lite_{slug(label)}", tagger_overrides(label)
            )
        loads = []
        for load in ("idle", "contended"):
            stop = multiprocessing.Event()
            hog = None
            if load == "contended":
                hog = multiprocessing.Process(target=busy_loop, args=(stop,), daemon=True)
                hog.start()
                time.sleep(0.5)
            try:
                for label in PATHS:
                    res = run_child(path, label, repeat)
                    # best of `repeat` process starts, like the in-process figure
                    cli = min(run_cli(path, label, preset_files[label]) for _ in range(repeat))
                    rows[(load, label)] = {
                        "annotate_s": float(res["annotate_s"]),  # type: ignore[arg-type]
                        "cli_s": cli,
                    }
                    console.print(f"  {load} {label}: {res} cli {cli:.2f} s", highlight=False)
            finally:
                stop.set()
                if hog is not None:
                    hog.join(5)
            loads.append(", ".join(f"{x:.1f}" for x in os.getloadavg()))

    table = Table(
        title=f"busy studio: whole lite pipeline with the tagger, {seconds:.0f} s track, uncached"
    )
    for col in (
        "cores",
        "path",
        "annotate (s)",
        "x real time",
        "new vs old",
        "vs idle",
        "CLI end to end (s)",
        "CLI new vs old",
    ):
        table.add_column(col, justify="right")
    for load in ("idle", "contended"):
        for label in PATHS:
            r = rows[(load, label)]
            other = rows[(load, "old")]
            table.add_row(
                "no busy loop" if load == "idle" else "busy loop holds 1",
                f"{label} ({PATHS[label][0]}, {PATHS[label][1].lower()} waits, "
                f"{'every' if PATHS[label][2] == 0 else 'preset'} patches)",
                f"{r['annotate_s']:.2f}",
                f"{seconds / r['annotate_s']:.0f}x",
                f"{other['annotate_s'] / r['annotate_s']:.2f}x faster" if label != "old" else "",
                f"{r['annotate_s'] / rows[('idle', label)]['annotate_s']:.2f}x slower"
                if load == "contended"
                else "",
                f"{r['cli_s']:.2f}",
                f"{other['cli_s'] / r['cli_s']:.2f}x faster" if label != "old" else "",
            )
    console.print(table)
    console.print(
        f"load average (1, 5, 15 min) after the idle rows: {loads[0]}; after the contended "
        f"rows: {loads[1]}",
        highlight=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--audio", default=str(ROOT / "docs/demo/demo.flac"))
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipeline-only", action="store_true", help="only the busy-studio table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_pipeline(args.audio, args.child, args.repeat)
        return

    import soundfile as sf
    from rich.console import Console
    from rich.table import Table

    from engine import audio, presets
    from engine.analysis.key import estimate_key
    from engine.analysis.loudness import integrated_lufs
    from engine.analysis.tempo import estimate_tempo
    from engine.pipeline import Annotator, plan_regions
    from engine.store import Store

    src, sr = sf.read(args.audio, dtype="float32", always_2d=True)
    n = int(args.seconds * sr)
    track = np.tile(src.T, (1, int(np.ceil(n / src.shape[0]))))[:, :n]
    console = Console(width=130)
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; load average before: "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        highlight=False,
    )
    busy_studio(track, sr, args.seconds, args.repeat)
    if args.pipeline_only:
        return
    preset = presets.load("lite")
    asr = preset.audio.analysis_sr
    mono = audio.to_analysis(audio.Audio(track, sr, "bench"), sr=asr)
    regions = plan_regions(
        args.seconds, length_s=preset.regions.length_s, min_tail_s=preset.regions.min_tail_s
    )
    chunks = [mono[int(r.start_s * asr) : int(r.end_s * asr)] for r in regions]
    native = [track[:, int(r.start_s * sr) : int(r.end_s * sr)] for r in regions]

    import librosa  # baseline only

    librosa.beat.beat_track(y=chunks[0], sr=asr)  # JIT warm-up outside the timings
    librosa_key(chunks[0], asr)
    estimate_key(chunks[0], sr=asr)

    rows: list[tuple[str, float, float | None]] = []

    def stage(name: str, ours: Callable[[], object], base: Callable[[], object] | None) -> None:
        t_ours = best_of(ours, args.repeat)
        t_base = best_of(base, max(1, args.repeat - 1)) if base else None
        rows.append((name, t_ours, t_base))

    stage(
        "key",
        lambda: [estimate_key(c, sr=asr) for c in chunks],
        lambda: [librosa_key(c, asr) for c in chunks],
    )
    stage(
        "tempo",
        lambda: [estimate_tempo(c, sr=asr) for c in chunks],
        lambda: [librosa.beat.beat_track(y=c, sr=asr) for c in chunks],
    )
    import pyloudnorm

    meter = pyloudnorm.Meter(sr)
    stage(
        "loudness",
        lambda: [integrated_lufs(c, sr=sr) for c in native],
        lambda: [meter.integrated_loudness(c.T.astype(np.float64)) for c in native],
    )
    stage("resample + mono", lambda: audio.to_analysis(audio.Audio(track, sr, "b"), sr=asr), None)
    from engine.pipeline import region_chords

    stage(
        "chords of each region alone (region requests)",
        lambda: [
            region_chords(audio.Audio(c, sr, "b", r.start_s), analysis=preset.analysis)
            for c, r in zip(native, regions, strict=True)
        ],
        None,
    )

    from dataclasses import replace

    untagged = replace(preset, options=replace(preset.options, tag=False))
    pipeline_rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "track.flac"
        sf.write(path, track.T, sr)
        for label, p in (("with tagger", preset), ("tagger off", untagged)):
            ann = Annotator(p, store=Store(Path(d) / f"{p.options.tag}.sqlite3"))
            t_uncached = best_of(lambda a=ann: a.annotate(str(path), use_cache=False), args.repeat)
            t_cached = best_of(lambda a=ann: a.annotate(str(path)), args.repeat)
            pipeline_rows.append((f"annotate + narrate, {label}, uncached", t_uncached))
            pipeline_rows.append((f"annotate + narrate, {label}, cached", t_cached))

            def requests(a: Annotator = ann, *, cached: bool) -> None:
                """One region request per region, as a DAW sends them."""
                if not cached:
                    a._own_chords.clear()  # the chords a region read are remembered too
                for r in regions:
                    a.annotate(str(path), [r], narrate=False, use_cache=cached)

            t_req = best_of(lambda: requests(cached=False), args.repeat)
            t_req_cached = best_of(lambda: requests(cached=True), args.repeat)
            ann.close()
            pipeline_rows.append((f"region requests, {label}, uncached", t_req))
            pipeline_rows.append((f"region requests, {label}, cached", t_req_cached))

    table = Table(
        title=f"lite throughput: {args.seconds:.0f} s track, {len(regions)} regions of 10 s "
        "(baselines: librosa key/tempo, pyloudnorm loudness)"
    )
    for col in ("stage", "ours (s)", "ours x RT", "baseline (s)", "baseline x RT", "speed-up"):
        table.add_column(col, justify="right")
    total = 0.0
    for name, t, b in rows:
        total += t if name in ("key", "tempo", "loudness") else 0.0
        table.add_row(
            name,
            f"{t:.3f}",
            f"{args.seconds / t:.0f}x",
            f"{b:.3f}" if b else "—",
            f"{args.seconds / b:.0f}x" if b else "—",
            f"{b / t:.1f}x" if b else "—",
        )
    table.add_row(
        "key + tempo + loudness", f"{total:.3f}", f"{args.seconds / total:.0f}x", "", "", ""
    )
    for name, t in pipeline_rows:
        table.add_row(name, f"{t:.3f}", f"{args.seconds / t:.0f}x", "", "", "")
    console.print(table)
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, best of {args.repeat}"
    )


if __name__ == "__main__":
    main()
