"""``sonicverse engine``: load a preset once and serve it over OSC until interrupted.

The command around :class:`~engine.server.EngineServer` (``python -m engine.serve`` runs it
with plain logging).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from daw_bridge import protocol
from engine import server
from engine.errors import EngineError, InvalidRequest
from engine.server import EngineServer, ServerConfig
from engine.tagging import prefer_passive_threads

if TYPE_CHECKING:
    from engine.pipeline import Annotator

log = logging.getLogger(__name__)

WARM_UP_SR = 44100
"""Sample rate (Hz) of the noise region the engine analyses once at start."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sonicverse engine``."""
    parser.add_argument(
        "--preset", default="lite", help="preset name or .toml path (default: lite)"
    )
    parser.add_argument(
        "--host",
        default=protocol.DEFAULT_HOST,
        help="interface to listen on (default: 127.0.0.1; others need --token)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=protocol.DEFAULT_PORT,
        help=f"UDP port (default: {protocol.DEFAULT_PORT}; 0 = any free port)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SONICVERSE_TOKEN", ""),
        help="shared secret every message must carry (default: $SONICVERSE_TOKEN)",
    )
    parser.add_argument(
        "--root",
        action="append",
        default=[],
        metavar="DIR",
        help="only read audio files under DIR (repeatable; default: anywhere)",
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=ServerConfig.queue_size,
        help=f"requests that may wait; more get 'busy' (default: {ServerConfig.queue_size})",
    )
    parser.add_argument("--store", help="annotation store (SQLite file); default: user data dir")
    parser.add_argument(
        "--fresh-store",
        action="store_true",
        help="if the store is damaged (truncated, not a database, fails its integrity check), "
        "keep it aside as <store>.damaged-<date-time> and start an empty one "
        "(default: refuse to start)",
    )
    parser.add_argument("--device", help="device for neural presets (cuda, cpu)")
    parser.add_argument(
        "--max-file-mb",
        type=float,
        default=ServerConfig.max_file_bytes / 2**20,
        help="refuse larger audio files (default: 2048)",
    )


def run(args: argparse.Namespace) -> int:
    """``sonicverse engine``: load the preset once and serve until interrupted.

    Returns:
        0 after Ctrl-C / SIGTERM, 2 when the engine cannot start.
    """
    import signal

    prefer_passive_threads()  # before anything imports torch
    from engine import presets
    from engine.pipeline import Annotator
    from engine.store import open_store

    server_log = logging.getLogger(server.__name__)
    if server_log.getEffectiveLevel() > logging.INFO:
        server_log.setLevel(logging.INFO)  # the server's listening line is the command's output
    try:
        config = ServerConfig(
            host=args.host,
            port=args.port,
            token=args.token,
            roots=tuple(Path(r) for r in args.root),
            queue_size=args.queue,
            max_file_bytes=int(args.max_file_mb * 2**20),
        )
        for r in config.roots:
            if not r.is_dir():
                raise InvalidRequest(f"--root {r}: not a folder")
        preset = presets.load(args.preset)
        store = open_store(args.store, fresh=args.fresh_store)
        annotator = Annotator(preset, store=store, device=args.device)
        warm(annotator)
    except EngineError as exc:
        log.error("cannot start the engine: %s", exc)
        return 2
    try:
        engine_server = EngineServer(annotator, config)
    except EngineError as exc:
        log.error("cannot start the engine: %s", exc)
        annotator.close()
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine_server.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        log.info("stopping")
        engine_server.stop()
        annotator.close()
    return 0


def warm(annotator: Annotator) -> float:
    """Run one short region through the backend before the first request arrives.

    Model sessions, first-call allocations and the analysers' lazy imports (scipy) then cost
    nothing in the first DAW request.

    Returns:
        Seconds it took.
    """
    from engine.live import warm_up

    t0 = time.perf_counter()
    warm_up(annotator.backend, sr=WARM_UP_SR, channels=2)
    seconds = time.perf_counter() - t0
    log.info("%s backend warm in %.2f s", annotator.backend.name, seconds)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.serve``: the same as ``sonicverse engine`` with plain logging."""
    parser = argparse.ArgumentParser(prog="python -m engine.serve", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
