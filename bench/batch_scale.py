"""Batch at catalogue scale: does the driver's memory stay flat as the files add up?

Run: ``python bench/batch_scale.py --files 20000 [--workers W] [--seconds S] [--tag]``.
Synthesizes N tiny WAV files (S seconds of a different tone and seeded noise each, 8 kHz
mono; one region per file), runs ``engine.batch.runner.run_batch`` on them with the local
process pool (``lite`` without the tagger unless ``--tag``, no annotation store: nothing is
cached, every file is annotated), and samples the driver's resident memory (this process; the
worker processes are not counted) after every 1,000 files and once the table and summary are
written. Then it reads the Parquet table back and counts its rows.

Ends with one line, ``batch-scale: files=N rows=N files_per_min=X driver_rss_mb_first=X
driver_rss_mb_last=X``: ``first`` is the RSS after the first 1,000 files (or all of them when
there are fewer), ``last`` after the outputs are written. No figure is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 8000
FIRST = 1000


def rss_mb() -> float:
    """This process's resident set size in MB (Linux ``/proc``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def make_files(folder: Path, *, files: int, seconds: float) -> None:
    """``files`` mono WAVs of ``seconds`` each, in 100 sub-folders."""
    import soundfile as sf

    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    for i in range(files):
        sub = folder / f"d{i % 100:02d}"
        sub.mkdir(exist_ok=True)
        y = 0.3 * np.sin(2 * np.pi * (110.0 + (i % 880)) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(sub / f"t{i:06d}.wav", y.astype(np.float32), SR, subtype="PCM_16")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument("--tag", action="store_true", help="run lite's tagger too")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import pyarrow.parquet as pq

    from engine import presets
    from engine.batch.jobs import discover
    from engine.batch.runner import default_workers, run_batch
    from engine.batch.worker import WorkerConfig

    preset = presets.load("lite")
    preset = replace(preset, options=replace(preset.options, tag=args.tag))
    workers = args.workers or default_workers()
    samples: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        t0 = time.perf_counter()
        make_files(src, files=args.files, seconds=args.seconds)
        print(f"made {args.files} files in {time.perf_counter() - t0:.1f} s", flush=True)
        jobs = discover(src)
        start = time.perf_counter()

        def progress(stage: str, done: int, total: int) -> None:
            if done and (done % FIRST == 0 or done == total):
                samples.append((done, time.perf_counter() - start, rss_mb()))
                print(f"  {done:7d} files  {samples[-1][1]:7.1f} s  rss {samples[-1][2]:7.1f} MB")

        config = WorkerConfig(preset=preset, store=None, out=str(out))
        report = run_batch(jobs, config, workers=workers, progress=progress)
        wall = time.perf_counter() - start
        last = rss_mb()
        rows = pq.ParquetFile(report.table).metadata.num_rows
    first = next(r for n, _, r in samples if n >= min(FIRST, args.files))
    print(
        f"{report.done} done, {report.failed} failed, {workers} workers, wall {wall:.1f} s "
        f"(annotation {samples[-1][1]:.1f} s, outputs {wall - samples[-1][1]:.1f} s)"
    )
    print(
        f"batch-scale: files={args.files} rows={rows} files_per_min={60 * report.done / wall:.0f} "
        f"driver_rss_mb_first={first:.1f} driver_rss_mb_last={last:.1f}"
    )


if __name__ == "__main__":
    main()
