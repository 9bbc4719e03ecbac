"""``sonicverse send``: one request to a running engine, its final reply printed as JSON.

For DAW scripting languages without UDP sockets (ReaScript Lua runs it through
``reaper.ExecProcess``)::

    sonicverse send region/annotate path=/tmp/bounce.wav start_s=0 end_s=10 track=Vox name=Verse

prints one line of ASCII-escaped JSON on stdout (non-ASCII names come out as ``\\uXXXX``
whatever the console's code page, so REAPER on Windows reads valid JSON)::

    {"ok": true, "id": "...", "address": "/sonicverse/region/annotate", "result": {...}}
    {"ok": false, "id": "...", "address": "...", "code": "audio_error", "message": "..."}

Exit status: 0 result, 1 error reply, 2 bad command line, 3 busy, 4 no reply in time, 5 the
engine restarted while the request waited (code ``engine_restarted``: ask again).
Arguments are ``name=value`` pairs named as in :mod:`daw_bridge.protocol` (the header's
``id``, ``reply_port`` and ``token`` are filled in), or a JSON object in a file
(``--args-file``): a program that starts us without a shell (``reaper.ExecProcess``) passes
names with quotes or apostrophes that way. An argument that is JSON text (``channels``,
``regions``) takes a JSON array either way: ``channels='["/s/Keys%R.wav"]'``, or the array
itself in the file (``{"channels": ["/s/Keys%R.wav"]}``). For callers that cannot wait on a
child process, ``--output`` writes the reply to a file (renamed into place when complete),
``--progress-file`` keeps the latest progress there, and creating the ``--cancel-file`` cancels
the request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from daw_bridge import protocol
from daw_bridge.client import (
    BridgeError,
    EngineBusy,
    EngineClient,
    EngineRestarted,
    EngineTimeout,
    ReplyError,
)

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUSY, EXIT_TIMEOUT, EXIT_RESTARTED = 0, 1, 2, 3, 4, 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sonicverse send``."""
    parser.add_argument(
        "address",
        nargs="?",
        help="request address, e.g. /sonicverse/region/annotate or region/annotate",
    )
    parser.add_argument(
        "args", nargs="*", metavar="name=value", help="the request's arguments by name (see --list)"
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("SONICVERSE_HOST", protocol.DEFAULT_HOST),
        help="engine host (default: $SONICVERSE_HOST or 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SONICVERSE_PORT", protocol.DEFAULT_PORT)),
        help=f"engine UDP port (default: $SONICVERSE_PORT or {protocol.DEFAULT_PORT})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SONICVERSE_TOKEN", ""),
        help="the engine's token (default: $SONICVERSE_TOKEN)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the final reply (default: 120)",
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="re-sends of an unacknowledged request (default: 3)"
    )
    parser.add_argument(
        "--progress", action="store_true", help="print progress as JSON lines on stderr"
    )
    parser.add_argument(
        "--args-file",
        type=Path,
        help="a JSON object of the request's arguments by name (merged under name=value pairs)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="write the reply JSON to this file (complete when it appears) instead of stdout",
    )
    parser.add_argument(
        "--progress-file",
        type=Path,
        help="keep the latest progress JSON in this file",
    )
    parser.add_argument(
        "--cancel-file",
        type=Path,
        help="cancel the request when this file appears",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the requests and their arguments as JSON and exit",
    )


def parse_pairs(message: protocol.Message, pairs: list[str]) -> dict[str, Any]:
    """``["start_s=0", "name=Verse"]`` -> typed values by name.

    Raises:
        ProtocolError: a pair without ``=``, a header or unknown name, or a bad number.
    """
    body = {a.name: a for a in message.body}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise protocol.ProtocolError("bad_arguments", f"{pair!r}: expected name=value")
        if name not in body:
            raise protocol.ProtocolError(
                "bad_arguments",
                f"{message.path}: unknown argument {name!r}; valid: {', '.join(body) or 'none'}",
            )
        values[name] = protocol.parse_value(body[name], text)
    return values


def load_args_file(message: protocol.Message, path: Path) -> dict[str, Any]:
    """The arguments in the JSON object at ``path``, typed as :func:`parse_pairs` types them.

    The JSON value given for an argument that is JSON text (``channels``, ``regions``) is sent
    as that text.

    Raises:
        ProtocolError: an unreadable file, not a JSON object, or an unknown or bad argument.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise protocol.ProtocolError("bad_arguments", f"--args-file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise protocol.ProtocolError(
            "bad_arguments",
            f"--args-file {path}: expected a JSON object, got {type(data).__name__}",
        )
    json_text = {a.name for a in message.body if a.json}
    pairs = []
    for name, value in data.items():
        if name in json_text and isinstance(value, list):
            value = json.dumps(value, ensure_ascii=False)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise protocol.ProtocolError(
                "bad_arguments",
                f"--args-file {path}: {name!r} must be a string or a number"
                + (" or a JSON array" if name in json_text else "")
                + f", got {value!r}",
            )
        pairs.append(f"{name}={value}")
    return parse_pairs(message, pairs)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)


def _wait(pending: Any, cancel_file: Path | None) -> Any:
    """``pending.result()``, cancelling the request once ``cancel_file`` exists."""
    if cancel_file is None:
        return pending.result()
    cancelled = False
    while not pending.done():
        if not cancelled and cancel_file.exists():
            pending.cancel()
            cancelled = True
        time.sleep(0.05)
    return pending.result()


def requests_listing() -> list[dict[str, Any]]:
    """The requests of the protocol as JSON-ready dicts (for ``--list``)."""
    return [
        {
            "address": m.path,
            "doc": m.doc,
            "args": [
                {
                    "name": a.name,
                    "type": protocol.TYPE_NAMES[a.type],
                    "doc": a.doc,
                    **({} if a.required else {"default": a.default}),
                }
                for a in m.body
            ],
            "result": m.result,
        }
        for m in protocol.REQUESTS.values()
    ]


def run(args: argparse.Namespace) -> int:
    """Send one request; print its final reply as one JSON line on stdout."""
    out = sys.stdout
    if args.list:
        out.write(
            json.dumps(
                {"protocol_version": protocol.PROTOCOL_VERSION, "requests": requests_listing()},
                indent=1,
            )
            + "\n"
        )
        return EXIT_OK
    if not args.address:
        out.write(
            json.dumps(
                {"ok": False, "code": "bad_arguments", "message": "missing address (see --list)"}
            )
            + "\n"
        )
        return EXIT_USAGE
    reply: dict[str, Any] = {"ok": False, "id": "", "address": args.address}
    try:
        message = protocol.resolve(args.address)
        reply["address"] = message.path
        if message.direction != "request":
            raise protocol.ProtocolError("unknown_address", f"{message.path} is a reply")
        values = load_args_file(message, args.args_file) if args.args_file else {}
        values.update(parse_pairs(message, args.args))
    except protocol.ProtocolError as exc:
        return _emit(args, {**reply, "code": exc.code, "message": str(exc)}, EXIT_USAGE)

    def progress(stage: str, done: int, total: int) -> None:
        line = json.dumps({"progress": stage, "done": done, "total": total})
        if args.progress_file is not None:
            _write_atomic(args.progress_file, line + "\n")
        if args.progress:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    wants_progress = args.progress or args.progress_file is not None

    status = EXIT_OK
    try:
        with EngineClient(
            args.host, args.port, token=args.token, timeout_s=args.timeout, retries=args.retries
        ) as client:
            pending = client.submit(
                message.path, values, on_progress=progress if wants_progress else None
            )
            reply["id"] = pending.id
            try:
                reply.update(ok=True, result=_wait(pending, args.cancel_file))
            except EngineBusy as exc:
                status = EXIT_BUSY
                reply.update(
                    code="busy", message=str(exc), queued=exc.queued, capacity=exc.capacity
                )
            except ReplyError as exc:
                status = EXIT_ERROR
                reply.update(code=exc.code, message=exc.message)
            except EngineTimeout as exc:
                status = EXIT_TIMEOUT
                reply.update(code="timeout", message=str(exc))
            except EngineRestarted as exc:
                status = EXIT_RESTARTED
                reply.update(code=exc.code, message=str(exc))
    except (BridgeError, protocol.ProtocolError, OSError) as exc:
        status = EXIT_USAGE
        reply.update(code=getattr(exc, "code", "bad_arguments"), message=str(exc))
    return _emit(args, reply, status)


def _emit(args: argparse.Namespace, reply: dict[str, Any], status: int) -> int:
    """Print the reply as one line of ASCII JSON, or write it to ``--output``."""
    line = json.dumps(reply, ensure_ascii=True) + "\n"
    if getattr(args, "output", None) is not None:
        _write_atomic(args.output, line)
    else:
        sys.stdout.write(line)
        sys.stdout.flush()
    return status
