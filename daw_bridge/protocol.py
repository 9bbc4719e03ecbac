"""The engine's OSC address space, as data.

Every address the engine answers or sends is declared once here: its path, its arguments
(name, OSC type tag, default) in wire order, its direction and what it does. The server,
:class:`~daw_bridge.client.EngineClient`, ``sonicverse send``, the docs table
(``scripts/gen_osc_table.py`` -> ``docs/osc.md``) and the tests all derive from this table.

Conventions:

* Addresses follow ``/sonicverse/<domain>/<verb>``.
* Every request starts with the same three arguments (:data:`HEADER`): a request ``id``
  chosen by the client, a ``reply_port`` (0 = reply to the sender's address and port) and a
  ``token`` ("" unless the engine was started with ``--token``).
* Every request gets exactly one *final* reply: ``/sonicverse/reply/result``,
  ``/sonicverse/reply/error`` or ``/sonicverse/reply/busy``. Queued requests first get
  ``/sonicverse/reply/accepted`` and, while they run, ``/sonicverse/reply/progress``.
* Results are JSON text. A result longer than :data:`CHUNK_BYTES` is split into parts, each
  sent as its own ``/sonicverse/reply/result`` datagram carrying ``part`` (0-based) and
  ``parts``; the client joins the parts in order. No datagram exceeds :data:`MAX_DATAGRAM_BYTES`.

This module is pure Python: it imports neither python-osc nor the engine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

PROTOCOL_VERSION = "1.0"
PREFIX = "/sonicverse"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000

MAX_DATAGRAM_BYTES = 8192
"""No reply datagram is larger than this (safe on loopback and common LANs, macOS included)."""

CHUNK_BYTES = 7168
"""Largest slice of result JSON (UTF-8 bytes) carried by one ``/sonicverse/reply/result``."""

MAX_ID_CHARS = 128
"""Longest request id the engine accepts."""

MAX_CHANNEL_FILES = 31
"""Most files the ``channels`` of a region or track request may name besides ``path``."""

MAX_MESSAGE_CHARS = 2000
"""Error messages are cut to this length so every error reply fits one datagram."""

OscType = Literal["s", "i", "f"]

TYPE_NAMES: dict[str, str] = {"s": "string", "i": "int32", "f": "float32"}

ERROR_CODES: dict[str, str] = {
    "unknown_address": "the address is not a request this engine answers",
    "bad_arguments": "wrong number or types of arguments for the address",
    "unauthorized": "the engine requires a token and the message's token is missing or wrong",
    "forbidden_path": "the file is outside the engine's configured roots",
    "invalid_request": "a value is out of range or malformed (e.g. end_s <= start_s)",
    "audio_error": "the file is missing, unreadable, of an unaccepted type or size, "
    "or the region lies outside it",
    "model_load_error": "the preset's model weights are missing or incompatible",
    "preset_error": "the preset is invalid",
    "cancelled": "the request was cancelled with /sonicverse/job/cancel",
    "store_error": "the annotation store cannot be read or written (damaged, locked by another "
    "process, read-only or a full disk): the request's result was not stored",
    "engine_error": "any other error the engine raised on purpose",
    "internal": "an unexpected failure inside the engine (see its log); it keeps serving",
}
"""Every ``code`` an error reply can carry, with its meaning."""


@dataclass(frozen=True)
class Arg:
    """One OSC argument.

    Attributes:
        name: the argument's name (also the ``name=value`` key of ``sonicverse send``).
        type: OSC type tag: ``"s"`` string, ``"i"`` int32, ``"f"`` float32 (int32 and
            float64 are accepted where float32 is declared).
        doc: what it means, with units.
        default: value used when a *trailing* argument is left off; None = required.
        json: a string holding JSON text (``sonicverse send --args-file`` also takes the JSON
            value itself).
    """

    name: str
    type: OscType
    doc: str
    default: str | int | float | None = None
    json: bool = False

    @property
    def required(self) -> bool:
        """True when the argument cannot be left off."""
        return self.default is None


@dataclass(frozen=True)
class Message:
    """One address of the protocol.

    Attributes:
        path: the OSC address, ``/sonicverse/<domain>/<verb>``.
        direction: ``"request"`` (client -> engine) or ``"reply"`` (engine -> client).
        args: arguments in wire order (requests include :data:`HEADER` first).
        doc: what it does and what it answers.
        queued: for requests, True when it runs on the engine's worker (gets ``accepted``,
            may get ``busy``); False when the network thread answers it at once.
        result: for requests, what the result JSON holds.
    """

    path: str
    direction: Literal["request", "reply"]
    args: tuple[Arg, ...]
    doc: str
    queued: bool = False
    result: str = ""

    @property
    def domain(self) -> str:
        """The ``<domain>`` part of the address."""
        return self.path.split("/")[2]

    @property
    def verb(self) -> str:
        """The ``<verb>`` part of the address."""
        return self.path.split("/")[3]

    @property
    def body(self) -> tuple[Arg, ...]:
        """The arguments after the header (all of them for replies)."""
        return self.args[len(HEADER) :] if self.direction == "request" else self.args

    @property
    def typetags(self) -> str:
        """The OSC type tag string of a full message, e.g. ``",sisff"``."""
        return "," + "".join(a.type for a in self.args)


HEADER: tuple[Arg, ...] = (
    Arg(
        "id",
        "s",
        f"request id chosen by the client (1 to {MAX_ID_CHARS} characters); echoed in every "
        "reply to this request",
    ),
    Arg("reply_port", "i", "UDP port on the sender's host for the replies; 0 = the sender's port"),
    Arg("token", "s", 'shared secret when the engine runs with --token, else ""'),
)


def _request(
    domain: str, verb: str, body: Sequence[Arg], doc: str, *, queued: bool, result: str
) -> Message:
    return Message(f"{PREFIX}/{domain}/{verb}", "request", (*HEADER, *body), doc, queued, result)


def _reply(verb: str, args: Sequence[Arg], doc: str) -> Message:
    return Message(f"{PREFIX}/reply/{verb}", "reply", tuple(args), doc)


REQUESTS: dict[str, Message] = {
    m.path: m
    for m in (
        _request(
            "engine",
            "ping",
            (),
            "Is the engine up? Answered at once by the network thread.",
            queued=False,
            result='{"pong": true, "protocol_version", "preset", "backend", "instance"}',
        ),
        _request(
            "engine",
            "status",
            (),
            "Queue depth and capacity, the running request, preset, uptime. Answered at once.",
            queued=False,
            result='{"protocol_version", "preset", "backend", "queued", "capacity", '
            '"running", "uptime_s", "served", "token_required", "roots", "instance"}',
        ),
        _request(
            "job",
            "cancel",
            (Arg("target", "s", "id of the request to cancel"),),
            "Cancel a queued or running request. The cancelled request's own final reply is "
            "an error with code 'cancelled'. Answered at once.",
            queued=False,
            result='{"target", "cancelled": bool, "state": "queued", "running" or "unknown"}',
        ),
        _request(
            "region",
            "annotate",
            (
                Arg("path", "s", "absolute path of the bounced audio file"),
                Arg("start_s", "f", "region start in seconds from the start of the file"),
                Arg("end_s", "f", "region end in seconds (exclusive)"),
                Arg("track", "s", "DAW track name", ""),
                Arg("name", "s", "DAW region / item / clip name", ""),
                Arg("lyrics", "s", "lyrics sung in the region, if known", ""),
                Arg(
                    "channels",
                    "s",
                    "JSON array of the absolute paths of the region's other channel files "
                    f"(0 to {MAX_CHANNEL_FILES}), each with path's sample rate and length, e.g. "
                    "a stereo Ardour region's right channel; their channels follow path's, "
                    '"" or "[]" = none',
                    "",
                    json=True,
                ),
                Arg(
                    "in_track",
                    "i",
                    "1: the region is one of a track's regions that the sender narrates next "
                    "(track/narrate then answers from the store), tagged as those are; 0: a "
                    "region alone, tagged on the preset's max_patches_alone 3 s patches (lite: 2)",
                    0,
                ),
            ),
            "Annotate one region of a file (key, vocals, tags, tempo, loudness, chords, caption). "
            "With channels, the region is decoded from every file over the same span and "
            "analysed as one signal. "
            "An unchanged region answers from the annotation store; a region of a file "
            "unchanged since it was last asked for answers at once, without 'accepted'.",
            queued=True,
            result="RegionAnnotation.to_dict()",
        ),
        _request(
            "track",
            "narrate",
            (
                Arg("path", "s", "absolute path of the bounced track or mix"),
                Arg("track", "s", "DAW track name", ""),
                Arg(
                    "regions",
                    "s",
                    'JSON array of [start_s, end_s, name] spans in the file; "" = the whole '
                    "file cut into the preset's region length",
                    "",
                    json=True,
                ),
                Arg(
                    "channels",
                    "s",
                    "JSON array of the absolute paths of the track's other channel files "
                    f"(0 to {MAX_CHANNEL_FILES}), each with path's sample rate and length; "
                    '"" or "[]" = none',
                    "",
                    json=True,
                ),
            ),
            "Annotate a track's regions (or the whole file) and write a timestamped narrative; "
            "with channels, from every channel file as one signal.",
            queued=True,
            result="TrackResult.to_dict(): the beat grid, the form, the regions and the "
            "narrative (TrackNarrative.to_dict())",
        ),
        _request(
            "track",
            "plan",
            (Arg("path", "s", "absolute path of the audio file"),),
            "The regions the engine cuts the file into when it is given none: the preset's "
            "region length, last-piece rule and snap (with snap = 'bars' the regions start on "
            "the beat grid's downbeats, with plan = 'form' they are the form's sections, and "
            "the grid and the form come too). The panel opens files with it.",
            queued=True,
            result='{"path", "regions": [[start_s, end_s], ...], "tempo_bpm", "meter", "beats", '
            '"beat_confidence", "tempi", "form"} (the grid and the form empty unless the plan '
            "follows them)",
        ),
        _request(
            "track",
            "annotations",
            (Arg("path", "s", "the file whose stored annotations to list"),),
            "Annotations of a file already in the engine's store (nothing is computed).",
            queued=True,
            result='{"path", "regions": [RegionAnnotation.to_dict(), ...]}',
        ),
    )
}
"""Requests, by address."""

REPLIES: dict[str, Message] = {
    m.path: m
    for m in (
        _reply(
            "accepted",
            (
                Arg("id", "s", "the request id"),
                Arg("position", "i", "requests ahead of it in the queue (0 = next)"),
            ),
            "A queued request was accepted (not final).",
        ),
        _reply(
            "progress",
            (
                Arg("id", "s", "the request id"),
                Arg("stage", "s", "what the worker is doing, e.g. 'analyze'"),
                Arg("done", "i", "steps done"),
                Arg("total", "i", "steps in this stage"),
            ),
            "Progress of a running request (not final).",
        ),
        _reply(
            "result",
            (
                Arg("id", "s", "the request id"),
                Arg("part", "i", "0-based index of this part of the JSON"),
                Arg("parts", "i", "number of parts; the result is final once all arrived"),
                Arg("json", "s", f"slice of the result JSON (at most {CHUNK_BYTES} UTF-8 bytes)"),
            ),
            "Final reply: the request's result as JSON, split into parts when long.",
        ),
        _reply(
            "error",
            (
                Arg("id", "s", 'the request id ("" when it could not be read)'),
                Arg("code", "s", "one of ERROR_CODES"),
                Arg("message", "s", "what was wrong, naming the value and what was expected"),
            ),
            "Final reply: the request failed.",
        ),
        _reply(
            "busy",
            (
                Arg("id", "s", "the request id"),
                Arg("queued", "i", "requests waiting"),
                Arg("capacity", "i", "the queue's size"),
            ),
            "Final reply: the queue is full; try again later.",
        ),
    )
}
"""Replies, by address."""

ACCEPTED = f"{PREFIX}/reply/accepted"
PROGRESS = f"{PREFIX}/reply/progress"
RESULT = f"{PREFIX}/reply/result"
ERROR = f"{PREFIX}/reply/error"
BUSY = f"{PREFIX}/reply/busy"
FINAL_REPLIES: frozenset[str] = frozenset({RESULT, ERROR, BUSY})

PING = f"{PREFIX}/engine/ping"
STATUS = f"{PREFIX}/engine/status"
CANCEL = f"{PREFIX}/job/cancel"
ANNOTATE = f"{PREFIX}/region/annotate"
NARRATE = f"{PREFIX}/track/narrate"
ANNOTATIONS = f"{PREFIX}/track/annotations"
PLAN = f"{PREFIX}/track/plan"


def all_messages() -> dict[str, Message]:
    """Every declared address (requests then replies)."""
    return {**REQUESTS, **REPLIES}


class ProtocolError(ValueError):
    """A message does not match its declaration.

    Attributes:
        code: an :data:`ERROR_CODES` key.
    """

    def __init__(self, code: str, message: str) -> None:
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code


def resolve(address: str) -> Message:
    """The declaration of ``address``; a short form ``"region/annotate"`` is accepted.

    Raises:
        ProtocolError: ``unknown_address``, listing the valid requests.
    """
    path = address if address.startswith("/") else f"{PREFIX}/{address.strip('/')}"
    found = all_messages().get(path)
    if found is None:
        raise ProtocolError(
            "unknown_address",
            f"unknown address {address!r}; valid requests: {', '.join(REQUESTS)}",
        )
    return found


def _check(arg: Arg, value: Any, *, where: str) -> str | int | float:
    if arg.type == "s":
        if not isinstance(value, str):
            raise ProtocolError("bad_arguments", f"{where} {arg.name}={value!r}: expected a string")
        return value
    if arg.type == "i":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError("bad_arguments", f"{where} {arg.name}={value!r}: expected an int32")
        if not -(2**31) <= value < 2**31:
            raise ProtocolError(
                "bad_arguments", f"{where} {arg.name}={value!r}: outside the int32 range"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError("bad_arguments", f"{where} {arg.name}={value!r}: expected a float")
    if not math.isfinite(value):
        raise ProtocolError("bad_arguments", f"{where} {arg.name}={value!r}: must be finite")
    return float(value)


def decode(message: Message, params: Sequence[Any]) -> dict[str, Any]:
    """Check received OSC arguments against ``message`` and name them.

    Trailing arguments with defaults may be left off. Ints are accepted for floats.

    Returns:
        ``{arg.name: value}`` for every declared argument, defaults filled in.

    Raises:
        ProtocolError: ``bad_arguments`` naming the argument, the value and the expected type.
    """
    args = message.args
    required = sum(1 for a in args if a.required)
    if not required <= len(params) <= len(args):
        expected = f"{required}" if required == len(args) else f"{required} to {len(args)}"
        raise ProtocolError(
            "bad_arguments",
            f"{message.path} takes {expected} arguments "
            f"({', '.join(f'{a.name}:{a.type}' for a in args)}), got {len(params)}",
        )
    out: dict[str, Any] = {}
    for i, arg in enumerate(args):
        out[arg.name] = (
            _check(arg, params[i], where=message.path) if i < len(params) else arg.default
        )
    return out


def encode(message: Message, values: Mapping[str, Any]) -> list[tuple[str, str | int | float]]:
    """Order and type-check ``values`` for sending: ``[(type_tag, value), ...]`` in wire order.

    Missing arguments take their defaults; a float argument accepts an int.

    Raises:
        ProtocolError: ``bad_arguments`` for an unknown name, a missing required argument or
            a value of the wrong type.
    """
    names = {a.name for a in message.args}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ProtocolError(
            "bad_arguments",
            f"{message.path}: unknown argument(s) {', '.join(unknown)}; "
            f"valid: {', '.join(a.name for a in message.args)}",
        )
    out: list[tuple[str, str | int | float]] = []
    for arg in message.args:
        if arg.name in values:
            value = values[arg.name]
        elif arg.default is not None:
            value = arg.default
        else:
            raise ProtocolError(
                "bad_arguments", f"{message.path}: missing required argument {arg.name!r}"
            )
        out.append((arg.type, _check(arg, value, where=message.path)))
    return out


def parse_value(arg: Arg, text: str) -> str | int | float:
    """Convert command-line text to ``arg``'s type (for ``sonicverse send name=value``).

    Raises:
        ProtocolError: ``bad_arguments`` when the text is not a valid number.
    """
    if arg.type == "s":
        return text
    try:
        return int(text) if arg.type == "i" else float(text)
    except ValueError:
        raise ProtocolError(
            "bad_arguments", f"{arg.name}={text!r}: expected {TYPE_NAMES[arg.type]}"
        ) from None


def split_utf8(text: str, *, max_bytes: int = CHUNK_BYTES) -> list[str]:
    """Split ``text`` into pieces of at most ``max_bytes`` UTF-8 bytes, never inside a character.

    Returns:
        At least one piece (``[""]`` for empty text); ``"".join(pieces) == text``.
    """
    if max_bytes < 4:
        raise ValueError(f"max_bytes={max_bytes}: must be >= 4 (one UTF-8 character)")
    data = text.encode("utf-8")
    pieces: list[str] = []
    start = 0
    while start < len(data):
        stop = min(start + max_bytes, len(data))
        while stop < len(data) and (data[stop] & 0xC0) == 0x80:
            stop -= 1
        pieces.append(data[start:stop].decode("utf-8"))
        start = stop
    return pieces or [""]


def markdown_table() -> str:
    """The address table in Markdown (what ``docs/osc.md`` and the README show)."""
    lines = [
        f"OSC protocol version {PROTOCOL_VERSION}. Every request starts with "
        + ", ".join(f"`{a.name}` ({TYPE_NAMES[a.type]})" for a in HEADER)
        + "; every request gets exactly one final reply (`result`, `error` or `busy`).",
        "",
        "| address | direction | arguments (after the header for requests) | answers / does |",
        "|---|---|---|---|",
    ]
    for m in all_messages().values():
        args = ", ".join(
            f"`{a.name}`:{a.type}" + ("" if a.required else f"={a.default!r}") for a in m.body
        )
        does = m.doc
        if m.direction == "request":
            does += f" Result: `{m.result}`." + (" Queued." if m.queued else "")
        lines.append(f"| `{m.path}` | {m.direction} | {args or '-'} | {does} |")
    lines += ["", "| error code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {meaning} |" for code, meaning in ERROR_CODES.items()]
    return "\n".join(lines) + "\n"
