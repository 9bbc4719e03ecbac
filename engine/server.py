"""The resident engine: an OSC/UDP server in front of one :class:`~engine.pipeline.Annotator`.

Two threads. The *network thread* (python-osc's UDP server) only parses, authenticates,
validates and enqueues; it answers ``ping``, ``status`` and ``cancel`` itself. The *worker
thread* owns the models: it takes requests from a bounded queue one at a time and sends
each request's final reply. A full queue answers ``busy`` at once.

Every datagram first passes the gate (:mod:`engine.gate`): a per-sender rate limit and our
own check of its OSC framing, before python-osc parses anything. A datagram that fails is
dropped without a reply, and log lines about any one sender are capped per second.

Every request gets exactly one final reply (``result``, ``error`` or ``busy``), sent to the
sender's address or, once authenticated, to the ``reply_port`` it names. Error replies to
requests that are not authenticated (unknown address, bad arguments, wrong token) go to the
sender only and never total more bytes than the datagram that carried them: one that does not
fit is left unsent. A request re-sent with the same id while it is queued or running is
acknowledged again, not run twice; re-sent after it finished, it gets the same final reply
again (the last :attr:`ServerConfig.remembered` replies are kept). A reused id with a
different request gets an ``invalid_request`` error. Results longer than one datagram are
split into parts (see :mod:`daw_bridge.protocol`).

Audio files are opened once, on the network thread, and the root check is made on what the
opened descriptor points to; the worker reads only through that descriptor.

The address space comes from :mod:`daw_bridge.protocol`; nothing here knows about tensors.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import queue
import socket
import stat
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from daw_bridge import protocol
from daw_bridge.protocol import Message, ProtocolError
from engine.errors import AudioError, Cancelled, EngineError, InvalidRequest
from engine.gate import FramingError, GateLimits, LogLimiter, RateLimiter, check_datagram
from engine.handlers import registry as handlers

if TYPE_CHECKING:
    from engine.pipeline import Annotator

log = logging.getLogger(__name__)

Address = tuple[str, int]


@dataclass(frozen=True)
class ServerConfig:
    """How the engine listens and what it accepts.

    Attributes:
        host: interface to bind; non-loopback addresses require ``token``.
        port: UDP port (0 = any free port; see :attr:`EngineServer.address`).
        token: shared secret required on every message when set ("" = none).
        roots: folders audio files must lie under (resolved, symlinks followed); empty = any.
        queue_size: requests that may wait for the worker; more are answered ``busy``.
        max_file_bytes: larger audio files are refused.
        remembered: finished requests whose final reply is kept for re-sent ids.
        memo_size: region results kept in memory by file identity: a request for a region
            of an unchanged file is answered by the network thread without queueing.
        progress_interval_s: least time between two progress messages of a request.
        gate: what one datagram may hold (framing checked before python-osc parses it).
        rate_per_s: units a sender may spend per second (one per datagram, one per KiB and
            one per message after the first); datagrams over it are dropped unparsed.
        burst: units a quiet sender may spend at once.
        log_lines_per_s: log lines about one sender per second; more are counted, not written.
    """

    host: str = protocol.DEFAULT_HOST
    port: int = protocol.DEFAULT_PORT
    token: str = ""
    roots: tuple[Path, ...] = ()
    queue_size: int = 32
    max_file_bytes: int = 2 * 1024**3
    remembered: int = 256
    memo_size: int = 4096
    progress_interval_s: float = 0.05
    gate: GateLimits = field(default_factory=GateLimits)
    rate_per_s: float = 1000.0
    burst: float = 500.0
    log_lines_per_s: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InvalidRequest(f"port={self.port}: expected 0..65535")
        if not 1 <= self.queue_size <= 100_000:
            raise InvalidRequest(f"queue_size={self.queue_size}: expected 1..100000")
        if self.max_file_bytes <= 0:
            raise InvalidRequest(f"max_file_bytes={self.max_file_bytes}: must be > 0")
        if not is_loopback(self.host) and not self.token:
            raise InvalidRequest(
                f"refusing to listen on non-loopback host {self.host!r} without a token; "
                "pass --token (every message must then carry it) or bind 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IPv4/IPv6 addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Job:
    """A request waiting for or running on the worker.

    Attributes:
        id: the request id.
        message: its declaration.
        args: its decoded arguments.
        reply_to: where its replies go.
        cancel: set to cancel it (checked between regions).
        memo_key: for region requests, the file's identity (device, inode, size, mtime,
            ctime) and the region: equal keys mean equal samples.
        digest: a hash of the request as received (address and every argument): a re-sent
            id is replayed only for an identical request.
        file: the audio file, opened once by the network thread (closed when it finishes).
        channel_files: the region's other channel files (``channels``), opened likewise.
    """

    id: str
    message: Message
    args: dict[str, Any]
    reply_to: Address
    cancel: threading.Event = field(default_factory=threading.Event)
    memo_key: tuple[Any, ...] | None = None
    digest: str = ""
    file: BinaryIO | None = None
    channel_files: list[BinaryIO] = field(default_factory=list)

    def close_file(self) -> None:
        """Close the opened audio files, if any."""
        if self.file is not None:
            self.file.close()
            self.file = None
        while self.channel_files:
            self.channel_files.pop().close()


class _UDPServer(BlockingOSCUDPServer):
    """python-osc's UDP server with larger datagrams, our gate in front of its parser and
    errors logged (rate-limited), never printed."""

    max_packet_size = 65535
    admit: Callable[[bytes, Address], bool] = staticmethod(lambda data, client: True)
    on_error: Callable[[Address], None] = staticmethod(lambda client: None)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return self.admit(request[0], client_address)

    def server_bind(self) -> None:
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            log.debug("could not enlarge the receive buffer")
        super().server_bind()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.on_error(client_address)


class EngineServer:
    """The OSC front of an :class:`~engine.pipeline.Annotator`.

    Args:
        annotator: the pipeline the worker runs (owned by the caller: :meth:`stop` does not
            close it).
        config: where to listen and what to accept.

    Raises:
        InvalidRequest: a non-loopback host without a token, an invalid port or queue size.
        EngineError: the address cannot be bound.
    """

    def __init__(self, annotator: Annotator, config: ServerConfig | None = None) -> None:
        self.annotator = annotator
        self.config = config or ServerConfig()
        self._roots = tuple(Path(r).resolve() for r in self.config.roots)
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=self.config.queue_size)
        self._lock = threading.RLock()
        self._active: dict[str, Job] = {}
        self._finished: OrderedDict[str, tuple[str, list[bytes]]] = OrderedDict()
        self._memo: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._running: Job | None = None
        self._stopping = threading.Event()
        self._served = 0
        self._started = time.monotonic()
        self.instance = uuid.uuid4().hex[:16]
        """Names this engine run in ``ping`` and ``status``: a client that sees it change knows
        the engine restarted and its accepted requests are lost."""
        self._rate = RateLimiter(self.config.rate_per_s, self.config.burst)
        self._log_limit = LogLimiter(self.config.log_lines_per_s)
        self._budget = 0  # reply bytes left for the datagram being handled (before auth)
        self.dropped = 0  # datagrams the gate dropped
        dispatcher = Dispatcher(strict_timing=False)
        dispatcher.set_default_handler(self._on_message, needs_reply_address=True)
        try:
            self._osc = _UDPServer((self.config.host, self.config.port), dispatcher)
        except OSError as exc:
            raise EngineError(
                f"cannot listen on {self.config.host}:{self.config.port} ({exc})"
            ) from exc
        self._osc.admit = self._admit  # type: ignore[method-assign]
        self._osc.on_error = self._on_error  # type: ignore[method-assign]
        self._threads: list[threading.Thread] = []
        self._direct = handlers.DIRECT
        self._queued = handlers.QUEUED

    @property
    def address(self) -> Address:
        """The bound ``(host, port)``."""
        host, port = self._osc.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Start the network and worker threads."""
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(
                target=self._osc.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="sonicverse-osc",
                daemon=True,
            ),
            threading.Thread(target=self._work, name="sonicverse-worker", daemon=True),
        ]
        for t in self._threads:
            t.start()
        host, port = self.address
        log.info(
            "SonicVerse engine (preset %s, protocol %s) listening on udp://%s:%d%s",
            self.annotator.preset.name,
            protocol.PROTOCOL_VERSION,
            host,
            port,
            " (token required)" if self.config.token else "",
        )

    def stop(self) -> None:
        """Stop serving: queued requests are answered ``cancelled``; the running one finishes."""
        self._osc.shutdown()
        with self._lock:
            for job in self._active.values():
                job.cancel.set()
        self._stopping.set()
        for t in self._threads:
            t.join(timeout=30.0)
        self._osc.server_close()

    def __enter__(self) -> EngineServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Network thread ------------------------------------------------------------------------

    def _admit(self, data: bytes, client: Address) -> bool:
        """The gate: rate limit, then framing. False drops the datagram without a reply."""
        if not self._rate.allow(client, 1.0 + len(data) / 1024):
            self.dropped += 1
            self._note(client, logging.WARNING, "over the rate limit: datagrams dropped")
            return False
        try:
            messages = check_datagram(data, self.config.gate)
        except FramingError as exc:
            self.dropped += 1
            self._note(client, logging.WARNING, "malformed datagram dropped (%s)", exc)
            return False
        if messages > 1 and not self._rate.allow(client, messages - 1):
            self.dropped += 1
            self._note(client, logging.WARNING, "over the rate limit: datagrams dropped")
            return False
        self._budget = len(data)
        return True

    def _on_error(self, client: Address) -> None:
        """A datagram that passed the gate failed in python-osc or a handler (a bug)."""
        self._note(client, logging.ERROR, "datagram failed", exc_info=True)

    def _note(self, client: Address, level: int, msg: str, *args: Any, **kw: Any) -> None:
        """Log a line about ``client``, at most :attr:`ServerConfig.log_lines_per_s` a second."""
        if not log.isEnabledFor(level):
            return
        ok, suppressed = self._log_limit.allow(client)
        if not ok:
            return
        if suppressed:
            log.log(level, "%s:%s: %d log lines suppressed", client[0], client[1], suppressed)
        log.log(level, f"%s:%s: {msg}", client[0], client[1], *args, **kw)

    def _on_message(self, client: Address, address: str, *params: Any) -> None:
        """python-osc's default handler: every datagram's messages arrive here."""
        rid = params[0] if params and isinstance(params[0], str) else ""
        rid = rid if len(rid) <= protocol.MAX_ID_CHARS else ""
        reply_to = client
        authenticated = False
        job: Job | None = None
        try:
            message = protocol.REQUESTS.get(address)
            if message is None:
                raise ProtocolError(
                    "unknown_address",
                    f"unknown address {address!r}; valid requests: {', '.join(protocol.REQUESTS)}",
                )
            args = protocol.decode(message, params)
            self._authenticate(args["token"])
            authenticated = True
            reply_to = self._reply_address(client, args["reply_port"])
            if not 1 <= len(args["id"]) <= protocol.MAX_ID_CHARS:
                raise ProtocolError(
                    "bad_arguments",
                    f"id of {len(args['id'])} characters: expected 1..{protocol.MAX_ID_CHARS}",
                )
            job = Job(args["id"], message, args, reply_to, digest=_digest(address, params))
            if message.path in self._direct:
                self._final_result(job, self._direct[message.path](self, job), remember=False)
                return
            if self._replay(job):
                return
            self._validate(job)
            if self._enqueue(job):
                job = None  # the worker owns it (and its file) now
        except ProtocolError as exc:
            self._send_error(reply_to, rid, exc.code, str(exc), budgeted=not authenticated)
        except EngineError as exc:
            self._send_error(reply_to, rid, _code(exc), str(exc), budgeted=not authenticated)
        except Exception as exc:
            self._note(
                client, logging.ERROR, "request %r to %s failed", rid, address, exc_info=True
            )
            self._send_error(
                reply_to,
                rid,
                "internal",
                f"{type(exc).__name__}: {exc}",
                budgeted=not authenticated,
            )
        finally:
            if job is not None:
                job.close_file()

    @staticmethod
    def _reply_address(client: Address, reply_port: int) -> Address:
        if reply_port == 0:
            return client
        if not 1 <= reply_port <= 65535:
            raise ProtocolError("bad_arguments", f"reply_port={reply_port}: expected 0..65535")
        return client[0], reply_port

    def _authenticate(self, token: str) -> None:
        if self.config.token and not hmac.compare_digest(
            token.encode("utf-8", "surrogatepass"), self.config.token.encode("utf-8")
        ):
            raise ProtocolError("unauthorized", "missing or wrong token")

    def _validate(self, job: Job) -> None:
        """Cheap checks before queueing: the file and the channel files (opened here, once,
        each checked as ``path`` is), the region bounds and ``in_track``, the regions and
        channels JSON."""
        if job.message.path == protocol.ANNOTATIONS:
            path = job.args["path"]
            if self._roots and not self._inside_roots(os.path.realpath(path)):
                raise self._forbidden(path)
            job.args["path"] = _absolute(path)
            return
        channels: list[str] = []
        if job.message.path == protocol.NARRATE:
            job.args["regions"] = parse_regions(job.args["regions"])
            channels = parse_channels(job.args["channels"])
        if job.message.path == protocol.ANNOTATE:
            start, end = job.args["start_s"], job.args["end_s"]
            if start < 0 or end <= start:
                raise InvalidRequest(f"region [{start}, {end}) s: expected 0 <= start_s < end_s")
            if job.args["in_track"] not in (0, 1):
                raise InvalidRequest(
                    f"in_track={job.args['in_track']!r}: expected 0 (a region alone) or 1"
                )
            channels = parse_channels(job.args["channels"])
        job.file, st = self.open_path(job.args["path"])
        job.args["path"] = _absolute(job.args["path"])
        identities = []
        for path in channels:
            f, cst = self.open_path(path)
            job.channel_files.append(f)
            identities.append(
                (cst.st_dev, cst.st_ino, cst.st_size, cst.st_mtime_ns, cst.st_ctime_ns)
            )
        if job.message.path in (protocol.ANNOTATE, protocol.NARRATE):
            job.args["channels"] = [_absolute(p) for p in channels]
        if job.message.path == protocol.ANNOTATE:
            a = job.args
            job.memo_key = (
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                a["path"],
                a["start_s"],
                a["end_s"],
                a["name"],
                a["lyrics"],
                a["in_track"],
                *zip(a["channels"], identities, strict=True),
            )

    def check_path(self, path: str) -> Path:
        """The absolute path of an audio file the engine may read (opened once and closed).

        Raises:
            AudioError: not an existing regular file, unaccepted type, empty or too large.
            ProtocolError: ``forbidden_path`` when outside the configured roots.
        """
        f, _ = self.open_path(path)
        f.close()
        return Path(_absolute(path))

    def open_path(self, path: str) -> tuple[BinaryIO, os.stat_result]:
        """Open an audio file the engine may read, once: the root check is made on what the
        opened descriptor points to, so swapping a folder for a symlink after the check
        cannot lead the reader outside the roots. Errors name the path as given, never
        where its symlinks lead.

        Returns:
            The open file (the caller closes it) and its ``fstat``.

        Raises:
            AudioError: not an existing regular file, unaccepted type, empty or too large.
            ProtocolError: ``forbidden_path`` when outside the configured roots, whether the
                file exists or not.
        """
        from engine.audio import SUPPORTED_SUFFIXES

        if not path or "\x00" in path:
            raise AudioError(f"path {path!r}: expected an absolute path to an audio file")
        if not os.path.isabs(path):
            raise AudioError(f"path {path!r}: expected an absolute path")
        if self._roots and not self._inside_roots(os.path.realpath(path)):
            raise self._forbidden(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise AudioError(f"{path}: no such file") from None
        except OSError as exc:
            raise AudioError(f"{path}: cannot open ({exc.strerror})") from None
        # Every check runs on the bare descriptor, closed here on any failure: wrapping it in
        # a file object first fails for a folder (IsADirectoryError) and leaves it open.
        try:
            if self._roots and not self._inside_roots(_fd_path(fd, path)):
                raise self._forbidden(path)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise AudioError(f"{path}: not a regular file")
            suffix = Path(path).suffix.lower()
            if suffix not in SUPPORTED_SUFFIXES:
                raise AudioError(
                    f"{path}: unsupported file type {suffix!r}; expected one of "
                    f"{', '.join(sorted(SUPPORTED_SUFFIXES))}"
                )
            if st.st_size == 0:
                raise AudioError(f"{path}: file is empty (0 bytes)")
            if st.st_size > self.config.max_file_bytes:
                raise AudioError(
                    f"{path}: {st.st_size} bytes exceeds the limit of "
                    f"{self.config.max_file_bytes} bytes"
                )
            f = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        return f, st

    def _inside_roots(self, real: str) -> bool:
        return any(Path(real).is_relative_to(r) for r in self._roots)

    def _forbidden(self, path: str) -> ProtocolError:
        return ProtocolError(
            "forbidden_path",
            f"{path}: outside the engine's roots ({', '.join(map(str, self._roots))})",
        )

    def _replay(self, job: Job) -> bool:
        """Answer a re-sent id: acknowledge it again if in flight, resend its final reply if
        finished. Returns True when it was a re-sent id."""
        with self._lock:
            known = self._active.get(job.id)
            digest = known.digest if known else self._finished.get(job.id, ("", []))[0]
            if (known is not None or job.id in self._finished) and digest != job.digest:
                raise InvalidRequest(
                    f"id {job.id!r} was already used for a different request; "
                    "expected a new id for a new request"
                )
            if job.id in self._active:
                self._send(
                    job.reply_to,
                    protocol.ACCEPTED,
                    id=job.id,
                    position=self._position(self._active[job.id]),
                )
                return True
            if job.id in self._finished:
                for dgram in self._finished[job.id][1]:
                    self._sendto(job.reply_to, dgram)
                return True
            return False

    def _enqueue(self, job: Job) -> bool:
        """Queue a job (True), or answer it at once from memory or ``busy`` (False)."""
        with self._lock:
            if self._replay(job):
                return False
            memo = self._memo.get(job.memo_key) if job.memo_key is not None else None
            if memo is not None:
                self._memo.move_to_end(job.memo_key)  # type: ignore[arg-type]
                self._final_result(job, memo)
                return False
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self._send(
                    job.reply_to,
                    protocol.BUSY,
                    id=job.id,
                    queued=self._queue.qsize(),
                    capacity=self.config.queue_size,
                )
                return False
            self._active[job.id] = job
            self._send(job.reply_to, protocol.ACCEPTED, id=job.id, position=self._position(job))
            return True

    def _position(self, job: Job) -> int:
        if self._running is job:
            return 0
        waiting = [j.id for j in list(self._queue.queue)]
        return waiting.index(job.id) if job.id in waiting else 0

    # What the handlers read and do (engine.handlers) ---------------------------------------

    @property
    def roots(self) -> tuple[Path, ...]:
        """The resolved ``--root`` folders (empty: any path)."""
        return self._roots

    @property
    def served(self) -> int:
        """Final replies sent so far."""
        return self._served

    def queued(self) -> int:
        """Requests waiting for the worker."""
        return self._queue.qsize()

    def running_id(self) -> str | None:
        """The id of the request the worker is running, None when idle."""
        running = self._running
        return None if running is None else running.id

    def uptime_s(self) -> float:
        """Seconds since the server was built."""
        return time.monotonic() - self._started

    def cancel(self, target: str) -> str:
        """Cancel request ``target``: ``"queued"`` or ``"running"`` when it was, else
        ``"unknown"`` (finished, or never seen)."""
        with self._lock:
            found = self._active.get(target)
            if found is None:
                return "unknown"
            found.cancel.set()
            state = "running" if found is self._running else "queued"
        log.info("request %s cancelled (%s)", target, state)
        return state

    def remember(self, job: Job, result: dict[str, Any]) -> None:
        """Keep ``result`` for a re-ask of an unchanged region of an unchanged file."""
        if job.memo_key is None:
            return
        with self._lock:
            self._memo[job.memo_key] = result
            while len(self._memo) > self.config.memo_size:
                self._memo.popitem(last=False)

    # Worker thread -------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            with self._lock:
                self._running = job
            try:
                if job.cancel.is_set():
                    raise _cancelled(job)
                result = self._queued[job.message.path](self, job)
            except EngineError as exc:
                self._final_error(job, _code(exc), str(exc))
            except Exception as exc:
                log.exception("request %s (%s) failed", job.id, job.message.path)
                self._final_error(job, "internal", f"{type(exc).__name__}: {exc}")
            else:
                self._final_result(job, result)
            finally:
                job.close_file()
                with self._lock:
                    self._running = None

    def progress(self, job: Job) -> Callable[[str, int, int], None]:
        """A progress callback sending ``progress`` messages for ``job``, rate-limited."""
        last = [0.0]

        def report(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - last[0] >= self.config.progress_interval_s:
                last[0] = now
                self._send(
                    job.reply_to,
                    protocol.PROGRESS,
                    id=job.id,
                    stage=stage,
                    done=int(done),
                    total=int(total),
                )

        return report

    # Replies -------------------------------------------------------------------------------

    def _final_result(self, job: Job, result: Any, *, remember: bool = True) -> None:
        text = json.dumps(result, allow_nan=False, separators=(",", ":"))
        pieces = protocol.split_utf8(text)
        dgrams = [
            _build(protocol.RESULT, id=job.id, part=i, parts=len(pieces), json=piece)
            for i, piece in enumerate(pieces)
        ]
        self._finish(job, dgrams, remember=remember)

    def _final_error(self, job: Job, code: str, message: str) -> None:
        log.debug("request %s (%s) -> %s: %s", job.id, job.message.path, code, message)
        self._finish(job, [_error(job.id, code, message)])

    def _finish(self, job: Job, dgrams: list[bytes], *, remember: bool = True) -> None:
        with self._lock:
            if remember:
                self._active.pop(job.id, None)
                self._finished[job.id] = (job.digest, dgrams)
                while len(self._finished) > self.config.remembered:
                    self._finished.popitem(last=False)
                self._served += 1
            for dgram in dgrams:
                self._sendto(job.reply_to, dgram)

    def _send_error(
        self, to: Address, rid: str, code: str, message: str, *, budgeted: bool = False
    ) -> None:
        """Send an error reply. ``budgeted`` (before authentication): the reply goes out only
        if it fits in what is left of the datagram's size, its message cut to fit."""
        self._note(to, logging.DEBUG, "error reply (id %r): %s: %s", rid, code, message)
        dgram = _error(rid, code, message)
        if budgeted:
            if len(dgram) > self._budget:
                dgram = _error(
                    rid, code, message[: max(0, len(message) - (len(dgram) - self._budget))]
                )
            if len(dgram) > self._budget:
                return
            self._budget -= len(dgram)
        self._sendto(to, dgram)

    def _send(self, to: Address, path: str, **values: Any) -> None:
        self._sendto(to, _build(path, **values))

    def _sendto(self, to: Address, dgram: bytes) -> None:
        try:
            self._osc.socket.sendto(dgram, to)
        except OSError as exc:
            log.warning("reply to %s:%s failed: %s", to[0], to[1], exc)


def parse_regions(text: str) -> list[Any] | None:
    """Parse the ``regions`` argument of ``/sonicverse/track/narrate``.

    Args:
        text: ``""`` or a JSON array of ``[start_s, end_s]`` or ``[start_s, end_s, name]``.

    Returns:
        ``None`` for ``""`` (the whole file), else a list of :class:`~engine.types.Region`.

    Raises:
        InvalidRequest: naming the malformed item.
    """
    from engine.types import Region

    if not text.strip():
        return None
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"regions={text[:80]!r}: not JSON ({exc})") from None
    if not isinstance(items, list) or not items:
        raise InvalidRequest(f"regions={text[:80]!r}: expected a non-empty JSON array")
    regions = []
    for i, item in enumerate(items):
        ok = (
            isinstance(item, list)
            and len(item) in (2, 3)
            and all(_is_seconds(x) for x in item[:2])
            and (len(item) == 2 or isinstance(item[2], str))
        )
        if not ok or not 0 <= float(item[0]) < float(item[1]) < float("inf"):
            raise InvalidRequest(
                f"regions[{i}]={item!r}: expected [start_s, end_s] or [start_s, end_s, name] "
                "with 0 <= start_s < end_s"
            )
        regions.append(Region(float(item[0]), float(item[1]), item[2] if len(item) == 3 else ""))
    return regions


def parse_channels(text: str) -> list[str]:
    """Parse the ``channels`` argument of ``region/annotate`` and ``track/narrate``.

    Args:
        text: ``""`` or a JSON array of at most :data:`~daw_bridge.protocol.MAX_CHANNEL_FILES`
            paths (the files themselves are checked as ``path`` is, by the caller).

    Returns:
        The paths, in order (empty for ``""`` or ``"[]"``).

    Raises:
        InvalidRequest: not JSON, not an array of strings, or too many.
    """
    if not text.strip():
        return []
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"channels={text[:80]!r}: not JSON ({exc})") from None
    if not isinstance(items, list) or not all(isinstance(p, str) for p in items):
        raise InvalidRequest(f"channels={text[:80]!r}: expected a JSON array of file paths")
    if len(items) > protocol.MAX_CHANNEL_FILES:
        raise InvalidRequest(
            f"channels: {len(items)} files, expected at most {protocol.MAX_CHANNEL_FILES}"
        )
    return items


def _is_seconds(x: Any) -> bool:
    """A JSON number that is a finite float (huge integers overflow float())."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _absolute(path: str) -> str:
    """``path`` made absolute and normal, symlinks kept: the name a file is recorded under."""
    return os.path.normpath(os.path.abspath(path))


def _fd_path(fd: int, path: str) -> str:
    """Where an open descriptor points (the kernel's view, immune to later swaps)."""
    proc = f"/proc/self/fd/{fd}"
    if os.path.islink(proc):
        return os.readlink(proc)
    try:
        import fcntl

        f_getpath = getattr(fcntl, "F_GETPATH", None)
        if f_getpath is not None:  # macOS
            raw = fcntl.fcntl(fd, f_getpath, b"\0" * 1024)
            return raw.split(b"\0", 1)[0].decode()
    except OSError:
        pass
    real = os.path.realpath(path)  # fallback: accept only if it is the same file
    st, fst = os.stat(real), os.fstat(fd)
    return real if (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino) else "/"


def _digest(address: str, params: Sequence[Any]) -> str:
    """A hash of a request as received: a replay must match it exactly."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((address, tuple(params))).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _code(exc: EngineError) -> str:
    return exc.code if exc.code in protocol.ERROR_CODES else "engine_error"


def _cancelled(job: Job) -> EngineError:
    return Cancelled(f"request {job.id} was cancelled before it ran")


def _build(path: str, **values: Any) -> bytes:
    builder = OscMessageBuilder(address=path)
    for tag, value in protocol.encode(protocol.REPLIES[path], values):
        builder.add_arg(value, tag)
    dgram: bytes = builder.build().dgram
    return dgram


def _error(rid: str, code: str, message: str) -> bytes:
    message = message.replace("\x00", "\\0")[: protocol.MAX_MESSAGE_CHARS]
    return _build(protocol.ERROR, id=rid.replace("\x00", ""), code=code, message=message)
