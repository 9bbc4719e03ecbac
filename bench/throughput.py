"""Throughput of the `lite` pipeline on a 3-minute track, beside librosa doing the same jobs.

Run: ``python bench/throughput.py [--audio FILE] [--repeat N]``. The default track is the
shipped demo (docs/demo/demo.flac) looped to 3:00, 44.1 kHz stereo. Prints one table:
seconds of audio analysed per wall second (x real time) for key, tempo and loudness over
10 s regions, for our analysers and for the baselines run in the same process (librosa
chroma_cqt + Krumhansl profile for key, librosa beat tracking for tempo, pyloudnorm's Meter
for loudness), with the ratio; then the whole `sonicverse annotate`
pipeline (decode, analysis, store, narrative) uncached and cached.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--audio", default=str(ROOT / "docs/demo/demo.flac"))
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

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
            ann.close()
            pipeline_rows.append((f"annotate + narrate, {label}, uncached", t_uncached))
            pipeline_rows.append((f"annotate + narrate, {label}, cached", t_cached))

    table = Table(
        title=f"lite throughput: {args.seconds:.0f} s track, {len(regions)} regions of 10 s "
        "(baselines: librosa key/tempo, pyloudnorm loudness)"
    )
    for col in ("stage", "ours (s)", "ours x RT", "baseline (s)", "baseline x RT", "speed-up"):
        table.add_column(col, justify="right")
    total = 0.0
    for name, t, b in rows:
        total += t if name != "resample + mono" else 0.0
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
    console = Console(width=130)
    console.print(table)
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, best of {args.repeat}"
    )


if __name__ == "__main__":
    main()
