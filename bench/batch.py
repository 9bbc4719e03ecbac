"""Batch throughput: files per minute for one worker, all cores and Ray, on the same set.

Run: ``python bench/batch.py [--files N] [--seconds S] [--preset NAME]``. Synthesizes N files
of S seconds (chord progressions in different keys over click tracks, 22.05 kHz stereo
FLAC), then runs ``engine.batch.runner.run_batch`` on them three ways, each with an empty
store and output folder (nothing cached): one worker (in this process: the baseline, what a
shell loop over ``sonicverse annotate`` gets at best, models loaded once), a local pool of
one process per core, and Ray Data (a local Ray started for it, one actor per core). Wall
times include start-up (spawning processes, loading the preset, starting Ray) and writing the
Parquet table and plots. Prints one table; no timings are asserted anywhere.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = [("C", "major"), ("A", "minor"), ("G", "major"), ("E", "minor"), ("F", "major")]


def make_set(folder: Path, *, files: int, seconds: float, sr: int = 22050) -> None:
    """``files`` FLACs of ``seconds`` each, in rotating keys and tempi."""
    from engine import audio
    from tests.synth import click_track, progression

    for i in range(files):
        tonic, mode = KEYS[i % len(KEYS)]
        y = progression(tonic, mode, sr=sr, chord_s=1.0, repeats=int(seconds // 4) + 1)
        y = y[: int(seconds * sr)]
        y = y + click_track(96.0 + 8 * i, y.size / sr, sr=sr, seed=i)[: y.size]
        audio.write(folder / f"track{i:03d}.flac", np.stack([y, y]), sr=sr)


def run(mode: str, folder: Path, preset_name: str, workers: int) -> tuple[float, int]:
    """Wall seconds and files done for one mode, from nothing cached."""
    from engine import presets
    from engine.batch.jobs import discover
    from engine.batch.runner import run_batch
    from engine.batch.worker import WorkerConfig

    with tempfile.TemporaryDirectory() as tmp:
        config = WorkerConfig(
            preset=presets.load(preset_name), store=str(Path(tmp) / "store.sqlite3"), out=tmp
        )
        jobs = discover(folder)
        t0 = time.perf_counter()
        if mode == "ray":
            import ray

            from engine.batch.runner import ray_runtime_env

            ray.init(num_cpus=workers, runtime_env=ray_runtime_env(), include_dashboard=False)
            try:
                report = run_batch(jobs, config, ray=True, workers=workers)
            finally:
                ray.shutdown()
        else:
            report = run_batch(jobs, config, workers=1 if mode == "1 worker" else workers)
        return time.perf_counter() - t0, report.done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--preset", default="lite")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from engine.batch.runner import default_workers

    cores = default_workers()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        make_set(Path(tmp), files=args.files, seconds=args.seconds)
        modes = [("1 worker", 1), (f"local pool, {cores} processes", cores)]
        try:
            import ray  # noqa: F401

            modes.append((f"Ray Data, {cores} actors", cores))
        except ImportError:
            print("ray not installed: Ray row skipped (pip install 'sonicverse-studio[batch]')")
        for label, workers in modes:
            mode = "ray" if label.startswith("Ray") else label if workers == 1 else "pool"
            wall, done = run(mode, Path(tmp), args.preset, workers)
            rows.append((label, done, wall, 60.0 * done / wall))
    base = rows[0][3]
    print(
        f"\n{args.files} files x {args.seconds:.0f} s, preset {args.preset}; "
        f"{platform.machine()}, {cores} cores, Python {platform.python_version()}\n"
    )
    print(f"| {'runner':<28} | files | wall s | files/min | vs 1 worker |")
    print(f"|{'-' * 30}|------:|-------:|----------:|------------:|")
    for label, done, wall, fpm in rows:
        print(f"| {label:<28} | {done:5d} | {wall:6.1f} | {fpm:9.1f} | {fpm / base:10.2f}x |")


if __name__ == "__main__":
    main()
