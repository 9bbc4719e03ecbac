"""``sonicverse batch FOLDER|manifest.jsonl --out results/``: annotate a whole catalogue."""

from __future__ import annotations

import argparse
import logging
import os

from rich.console import Console
from rich.markup import escape

from engine.batch.worker import SIDECARS
from engine.errors import EngineError, InvalidRequest
from engine.progress import progress_bar

log = logging.getLogger(__name__)

INTERRUPTED = 130


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sonicverse batch``."""
    p.add_argument("input", help="a folder (walked recursively) or a JSON Lines manifest")
    p.add_argument("--out", required=True, help="output folder (table, ledger, sidecars, plots)")
    p.add_argument("--preset", default="lite", help="preset name or .toml path (default: lite)")
    p.add_argument(
        "--workers", type=int, help="processes (or Ray actors); default: all cores (of the cluster)"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray Data: 'auto', 'ray://host:10001', or nothing to start a local Ray",
    )
    p.add_argument(
        "--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray actor (0.5 shares one)"
    )
    p.add_argument(
        "--sidecars",
        default="",
        help=f"per-file exports, comma-separated from {', '.join(SIDECARS)} (default: none)",
    )
    p.add_argument("--store", help="annotation store (SQLite file); default: user data dir")
    p.add_argument("--no-store", action="store_true", help="do not cache region annotations")
    p.add_argument("--device", help="device for neural presets (cuda, cpu)")
    p.add_argument("--no-plots", action="store_true", help="skip the summary plots")


def parse_sidecars(spec: str) -> tuple[str, ...]:
    """``"json,jams"`` -> ``("json", "jams")``.

    Raises:
        InvalidRequest: naming an unknown format and the valid ones.
    """
    formats = tuple(s.strip() for s in spec.split(",") if s.strip())
    for f in formats:
        if f not in SIDECARS:
            raise InvalidRequest(f"sidecar format {f!r} is not one of {', '.join(SIDECARS)}")
    return formats


def run(args: argparse.Namespace) -> int:
    """Run the batch; 0 when every job succeeded, 1 when any failed, 130 on Ctrl-C."""
    err = Console(stderr=True)
    try:
        return _run(args, err)
    except EngineError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2


def _run(args: argparse.Namespace, err: Console) -> int:
    from pathlib import Path

    from engine import presets
    from engine.batch.jobs import jobs_from
    from engine.batch.runner import check_output, run_batch
    from engine.batch.worker import WorkerConfig
    from engine.store import default_path

    check_output(args.out)
    jobs = jobs_from(args.input)
    src = Path(args.input)
    config = WorkerConfig(
        preset=presets.load(args.preset),
        store=None if args.no_store else str(args.store or default_path()),
        device=args.device,
        out=os.path.abspath(args.out),
        sidecars=parse_sidecars(args.sidecars),
        root=os.path.abspath(src if src.is_dir() else src.parent),
    )
    bar = progress_bar(err)
    with bar:
        task = bar.add_task("files", total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        result = run_batch(
            jobs,
            config,
            workers=args.workers,
            ray=args.ray is not None,
            ray_address=None if args.ray in (None, "local") else args.ray,
            gpus_per_worker=args.gpus_per_worker,
            plots=not args.no_plots,
            progress=report,
        )
    for job, error in result.errors:
        where = "" if error.startswith(job.split("#")[0]) else f"{job}: "
        err.print(
            f"[bold red]failed:[/] {escape(where)}{escape(str(error))}",
            highlight=False,
            soft_wrap=True,
        )
    err.print(
        f"{result.done} done, {result.skipped} skipped (finished before), {result.failed} failed"
        f"{' (interrupted)' if result.interrupted else ''}; table: {result.table}"
        + (f"; summary: {result.summary}" if result.summary else ""),
        highlight=False,
    )
    if result.interrupted:
        return INTERRUPTED
    return 1 if result.failed else 0
