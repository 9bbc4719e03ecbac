"""The ``sonicverse`` command: ``annotate``, ``presets`` and the commands of the other parts
(``engine``, ``send``, ``panel``, ``listen``), whose modules are imported only when chosen."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from daw_bridge.keys import vocals_word
from engine import __version__
from engine.errors import EngineError
from engine.progress import progress_bar

if TYPE_CHECKING:
    from engine.types import RegionAnnotation, TrackResult

log = logging.getLogger(__name__)

INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""

# name -> (module providing add_arguments(parser) and run(args) -> int, help); a module in
# DELEGATED runs as `python -m <module>` in a child process instead (the engine never imports it)
EXTERNAL: dict[str, tuple[str, str]] = {
    "engine": ("engine.serve", "run the resident engine (OSC server) with a preset"),
    "send": ("daw_bridge.send", "send one request to a running engine and print the JSON reply"),
    "panel": ("ui", "open the Qt annotation panel (sonicverse-panel)"),
    "listen": ("engine.listen", "caption what the microphone hears, live"),
    "evaluate": ("engine.evaluate", "score a preset on a labelled manifest; write a report"),
    "manifest": ("engine.data.importers", "build a manifest from MusicBench, Song Describer, CSV"),
    "batch": ("engine.batch.cli", "annotate a folder or manifest: Parquet table, sidecars, plots"),
    "tag": ("engine.filetags", "write key, BPM and a comment into audio files' own tags"),
    "dataset": ("engine.data.build", "build training chunks, teacher labels and MERT features"),
    "train": ("engine.train.main", "train heads, projector, LoRA or QLoRA from a train config"),
}

DELEGATED: frozenset[str] = frozenset({"ui"})

NEEDS_EXTRA: dict[str, str] = {"dataset": "train", "train": "train"}
"""Commands whose modules need an optional extra (checked before they are imported)."""

KEY_COLOURS = (
    "red",
    "dark_orange",
    "yellow",
    "green_yellow",
    "green",
    "spring_green2",
    "cyan",
    "deep_sky_blue1",
    "blue",
    "purple",
    "magenta",
    "deep_pink2",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser."""
    p = argparse.ArgumentParser(prog="sonicverse", description=__doc__)
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p.add_argument("--version", action="version", version=f"sonicverse {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("annotate", help="annotate audio files: key, tempo, loudness, captions")
    a.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, Opus, MP3, AIFF, M4A)")
    a.add_argument("--preset", default="lite", help="preset name or .toml path (default: lite)")
    a.add_argument(
        "--regions",
        help="regions in seconds, e.g. '0-12.5,12.5-40' (default: the preset's length, 10 s)",
    )
    a.add_argument(
        "--format",
        default="table",
        choices=["table", "json", "jams", "audacity", "csv"],
        help="table on the terminal (default), or an export format",
    )
    a.add_argument(
        "--out",
        help="output file (one input) or folder; default: stdout for one input, else a file "
        "next to each input",
    )
    a.add_argument(
        "--bars",
        action="store_true",
        help="audacity/csv: a label (marker) on every bar line of the beat grid too",
    )
    a.add_argument(
        "--chords",
        action="store_true",
        help="audacity/csv: a label over each chord (a marker where each chord starts) too",
    )
    a.add_argument("--no-cache", action="store_true", help="ignore cached annotations")
    a.add_argument("--store", help="annotation store (SQLite file); default: user data dir")
    a.add_argument("--device", help="device for neural presets (cuda, cpu)")

    sub.add_parser("presets", help="list presets and what each needs")
    for name, (_, help_text) in EXTERNAL.items():
        sub.add_parser(name, help=help_text, add_help=False).add_argument(
            "rest", nargs=argparse.REMAINDER
        )
    return p


def _setup_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        # a log that is not a terminal (a file, a DAW's pipe) gets whole lines, never wrapped
        handlers=[
            RichHandler(
                console=Console(stderr=True, soft_wrap=not sys.stderr.isatty()),
                show_path=False,
            )
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sonicverse`` console script."""
    from engine.tagging import prefer_passive_threads

    prefer_passive_threads()  # before anything imports torch (a DAW may hold a core)
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(args_list) if not a.startswith("-")), None)
    if first is not None and args_list[first] in EXTERNAL:
        # the part's own parser takes everything after the command, options first or not
        top = build_parser().parse_args([*args_list[:first], "presets"])
        _setup_logging(top.verbose)
        try:
            return run_external(args_list[first], args_list[first + 1 :])
        except KeyboardInterrupt:
            Console(stderr=True).print("interrupted", highlight=False)
            return INTERRUPTED
    args = build_parser().parse_args(args_list)
    _setup_logging(args.verbose)
    err = Console(stderr=True)
    try:
        if args.command == "presets":
            return cmd_presets(Console())
        code = cmd_annotate(args, Console(), err)
        global _TORN_DOWN
        _TORN_DOWN = True  # the annotator is closed, the store too; stdout is all written
        return code
    except EngineError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return INTERRUPTED


def run_external(command: str, argv: Sequence[str]) -> int:
    """Run ``sonicverse <command> ...`` through the module that provides it."""
    module_name, help_text = EXTERNAL[command]
    if module_name in DELEGATED:
        return subprocess.call([sys.executable, "-m", module_name, *argv])
    if command in NEEDS_EXTRA:
        from engine.extras import MissingExtra, require

        try:
            require(NEEDS_EXTRA[command], f"sonicverse {command}")
        except MissingExtra as exc:
            Console(stderr=True).print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            return 2
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"sonicverse {command}", description=help_text)
    module.add_arguments(parser)
    # `send` takes name=value pairs and options in any order
    parse = parser.parse_intermixed_args if command == "send" else parser.parse_args
    return int(module.run(parse(list(argv))))


def cmd_presets(out: Console) -> int:
    """Print the presets table."""
    from engine import presets

    table = Table("preset", "backend", "needs", "description", title="SonicVerse presets")
    for name, path in presets.available().items():
        try:
            p = presets.load(path)
        except EngineError as exc:
            table.add_row(name, "?", "[red]invalid[/]", str(exc))
            continue
        table.add_row(name, p.backend, "\n".join(p.requires) or "nothing", p.description)
    out.print(table)
    return 0


def cmd_annotate(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Annotate each file; one failing file does not stop the others."""
    from engine import export, presets
    from engine.pipeline import Annotator, parse_regions
    from engine.store import Store

    preset = presets.load(args.preset)
    regions = parse_regions(args.regions) if args.regions else None
    files = [Path(os.path.abspath(f)) for f in args.files]  # the store records absolute paths
    out_dir = _out_dir(args, files)
    annotator = Annotator(preset, store=Store(args.store), device=args.device)
    failures = 0
    progress = progress_bar(err, disable=not err.is_terminal and len(files) == 1)
    try:
        with progress:
            files_task = progress.add_task("files", total=len(files))
            stage_task = progress.add_task("", total=1)

            def report(stage: str, done: int, total: int) -> None:
                progress.update(stage_task, description=stage, completed=done, total=total)

            for f in files:
                progress.update(files_task, description=f"[bold]{f.name}")
                try:
                    result = annotator.annotate(
                        str(f), regions, use_cache=not args.no_cache, progress=report
                    )
                except EngineError as exc:
                    failures += 1
                    err.print(
                        f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
                    )
                    continue
                finally:
                    progress.advance(files_task)
                if args.format == "table":
                    print_result(result, out)
                elif out_dir is None and args.out is None:
                    out.out(
                        export.render(result, args.format, bars=args.bars, chords=args.chords),
                        end="",
                        highlight=False,
                    )
                else:
                    dest = (
                        Path(args.out)
                        if out_dir is None
                        else out_dir / (f.stem + export.SUFFIXES[args.format])
                    )
                    export.write(result, dest, args.format, bars=args.bars, chords=args.chords)
                    err.print(f"wrote {dest}", highlight=False)
    finally:
        annotator.close()
    return 1 if failures else 0


def _out_dir(args: argparse.Namespace, files: list[Path]) -> Path | None:
    """Folder the exports go to, or None when they go to ``--out`` itself or stdout."""
    if args.format == "table":
        return None
    if args.out is not None:
        out = Path(args.out)
        return out if (len(files) > 1 or out.is_dir()) else None
    return None if len(files) == 1 else Path(".")


def _key_colour(key: str | None) -> str:
    from engine.labels import key_index

    if key is None:
        return "grey30"
    return KEY_COLOURS[(key_index(key) % 12 * 7) % 12]


COMPACT_BELOW = 100
"""Terminals narrower than this many columns get the compact layout (captions on their own line)."""


def print_result(result: TrackResult, out: Console) -> None:
    """The terminal view: a region table, a key/vocals timeline strip and the narrative.

    ``key`` is the track's decoded key for the region (what the narrative says); ``region
    alone`` is the region's own estimate and its confidence. Under :data:`COMPACT_BELOW`
    columns each region is one line of figures with its caption on the line below, wrapped
    at words across the terminal's width.
    """
    from engine.narrative import timestamp

    title = f"{Path(result.source).name}  ({timestamp(result.duration_s)})"
    if out.width < COMPACT_BELOW:
        _print_compact(result, out, title)
    else:
        table = Table(title=title)
        for col in ("region", "key", "conf", "region alone", "vocals", "tempo", "LUFS"):
            table.add_column(col, overflow="fold", no_wrap=col in ("region", "key"))
        table.add_column("caption", overflow="fold", min_width=30, ratio=1)
        for a in result.regions:
            table.add_row(*_cells(a), a.caption)
        out.print(table)
    out.print(timeline(result, width=min(out.width, 100) - 8))
    out.print(f"[bold]Narrative:[/] {result.narrative.text}", highlight=False)


def _cells(a: RegionAnnotation) -> tuple[str | Text, ...]:
    """A region's figures: span, track key, its confidence, the region's own key, vocals,
    tempo, loudness."""
    from engine.narrative import timestamp

    key = a.key.key if a.key else ("—" if a.silent else "no clear key")
    own = a.region_key
    return (
        f"{timestamp(a.start_s)}-{timestamp(a.end_s)}" + (f" {a.name}" if a.name else ""),
        Text(key, style=_key_colour(a.key.key if a.key else None)),
        f"{a.key.confidence:.2f}" if a.key else "",
        f"{own.key} {own.confidence:.2f}" if own is not None else "",
        vocals_word(a.vocals.label, a.vocals.probabilities) if a.vocals else "",
        f"{a.tempo_bpm:.1f}" if a.tempo_bpm else "",
        f"{a.loudness_lufs:.1f}" if a.loudness_lufs is not None else "",
    )


def _print_compact(result: TrackResult, out: Console, title: str) -> None:
    """One line of figures per region, its caption indented on the next line."""
    from rich.padding import Padding

    out.print(Text(title, style="italic"))
    out.print(
        Text("region     key (conf) · alone · vocals · BPM · LUFS", style="bold"), no_wrap=True
    )
    for a in result.regions:
        span, key, conf, own, vocals, tempo, lufs = _cells(a)
        line = Text(f"{span:<10} ")
        line.append_text(key if isinstance(key, Text) else Text(key))
        parts = [f" ({conf})" if conf else "", f" · alone {own}" if own else ""]
        parts += [f" · {vocals}" if vocals else "", f" · {tempo} BPM" if tempo else ""]
        parts += [f" · {lufs} LUFS" if lufs else ""]
        line.append("".join(str(x) for x in parts))
        out.print(line, overflow="fold")
        if a.caption:
            out.print(Padding(Text(a.caption, style="dim"), (0, 0, 0, 4)))


def timeline(result: TrackResult, *, width: int) -> Text:
    """A strip of cells coloured by key (``v`` where vocals are heard, blank for silence)."""
    text = Text("keys  ")
    if result.duration_s <= 0 or width <= 0:
        return text
    for i in range(width):
        t = (i + 0.5) * result.duration_s / width
        a = next((r for r in result.regions if r.start_s <= t < r.end_s), None)
        if a is None or a.silent:
            text.append(" ", style="on grey15")
            continue
        vocal = a.vocals is not None and a.vocals.label != "none"
        text.append(
            "v" if vocal else " ", style=f"black on {_key_colour(a.key.key if a.key else None)}"
        )
    return text


_TORN_DOWN = False  # True once `annotate` has closed everything it opened


def entry() -> None:
    """The ``sonicverse`` console script: :func:`main`, then exit.

    After ``annotate`` has closed its annotator and store and written its output, nothing is
    left for the interpreter's own teardown to do but free the scientific libraries' modules
    one by one, about 0.2 s of a 3 s command on 2 cores: the process then flushes its streams
    and logging and leaves with ``os._exit``. Every other command (those that run a server, a
    Ray cluster, a Qt window) exits normally.
    """
    code = main()
    if _TORN_DOWN:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:  # `sonicverse annotate ... | head`: the reader left
            code = code or 1
        logging.shutdown()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
