"""A client for the engine's OSC protocol: requests, replies matched by id, retries, progress.

:class:`EngineClient` owns one UDP socket and one background thread that receives replies,
matches them to requests by request id, joins chunked results, re-sends requests that got
no answer and expires those past their timeout. It is safe to call from any thread.

Blocking use (scripts, ``sonicverse send``)::

    with EngineClient(port=9000) as engine:
        ann = engine.annotate_region("/tmp/bounce.wav", 0.0, 10.0, track="Vox", name="Verse")
        print(ann["key"]["key"], ann["vocals"]["label"])

Non-blocking use (a Qt panel)::

    pending = engine.submit(protocol.ANNOTATE, {"path": p, "start_s": 0.0, "end_s": 10.0},
                            on_progress=lambda stage, done, total: ...)
    pending.add_done_callback(lambda p: ...)   # see below for the thread it runs on
    pending.cancel()                           # asks the engine to cancel it

Callbacks (``on_progress``, ``on_accepted``, done callbacks) run on the client's receive
thread: a Qt application must hand them to the GUI thread (emit a signal from them) and must
not block in them. A done callback added to a request that has already finished (a fast
reply) runs at once, on the thread adding it: note what the request is for before adding it,
or queue the callback's work (the panel connects its signal with a queued connection).
``pending.result()`` raises :class:`ReplyError` (``code`` from
:data:`daw_bridge.protocol.ERROR_CODES`), :class:`EngineBusy`, :class:`EngineTimeout` or
:class:`EngineRestarted` (the engine that accepted it restarted or stopped: the client pings it
once a second while an accepted request waits, so this comes within about two seconds).

Stable API: :class:`EngineClient` (``submit``, ``request``, ``ping``, ``status``,
``annotate_region``, ``narrate``, ``annotations``, ``cancel``, ``close``), :class:`Pending`
and the exceptions below.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder

from daw_bridge import protocol

log = logging.getLogger(__name__)

DRAIN_MAX = 256  # datagrams read in one go before the deadlines are looked at
# The time a request waits with other queued requests ahead of it does not count against its
# timeout, up to this many times the timeout: requests queued behind a job that never ends
# (the engine still acknowledges them while its worker hangs) end too.
MAX_QUEUE_CREDIT = 3.0
PROBE_MISSES = 2  # unanswered probes in a row before the engine counts as gone
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

ProgressCallback = Callable[[str, int, int], None]
"""``(stage, done, total)``."""


class BridgeError(Exception):
    """Base class of the client's errors."""

    code = "bridge_error"


class ReplyError(BridgeError):
    """The engine answered with an error reply.

    Attributes:
        code: an :data:`daw_bridge.protocol.ERROR_CODES` key.
        message: the engine's message.
        request_id: the request's id.
    """

    def __init__(self, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class EngineBusy(BridgeError):
    """The engine's queue was full; the request was not run.

    Attributes:
        queued: requests waiting in the engine.
        capacity: the engine's queue size.
    """

    code = "busy"

    def __init__(self, request_id: str, queued: int, capacity: int) -> None:
        super().__init__(f"engine busy: {queued}/{capacity} requests queued (id {request_id})")
        self.request_id = request_id
        self.queued = queued
        self.capacity = capacity


class EngineTimeout(BridgeError):
    """No final reply arrived in time (the engine is down, unreachable or still working)."""

    code = "timeout"


class EngineRestarted(BridgeError):
    """The engine that accepted the request stopped: it restarted (its work on the request is
    lost) or stopped answering. Sending the request again is safe.

    Attributes:
        request_id: the request's id.
    """

    code = "engine_restarted"

    def __init__(self, message: str, request_id: str = "") -> None:
        super().__init__(message)
        self.request_id = request_id


class Pending:
    """A request in flight: a future for its result plus what the client needs to retry it.

    Attributes:
        id: the request id.
        address: the request's address.
        accepted: True once the engine acknowledged it (queued requests only).
        position: queue position reported by the engine when accepted.
    """

    def __init__(
        self,
        client: EngineClient,
        request_id: str,
        address: str,
        dgram: bytes,
        *,
        deadline: float,
        queue_credit_max: float = 0.0,
        on_progress: ProgressCallback | None,
        on_accepted: Callable[[int], None] | None,
    ) -> None:
        self.id = request_id
        self.address = address
        self.accepted = False
        self.position = -1
        self._client = client
        self._dgram = dgram
        self._future: Future[Any] = Future()
        self._deadline = deadline  # without the queue wait (:meth:`expires`)
        self._queue_credit_max = queue_credit_max
        self._credit = 0.0  # seconds it waited with others ahead of it, as far as known
        self._on_progress = on_progress
        self._on_accepted = on_accepted
        self._sends = 0
        self._last_heard = 0.0
        self._last_sent = 0.0
        self._accepted_at = 0.0
        self._queued_since = 0.0  # since when the engine says others are ahead of it (0: not)
        self._parts: dict[int, str] = {}

    def expires(self, now: float) -> float:
        """When the request times out, as known at ``now``: its deadline pushed back by the
        time it has waited with other queued requests ahead of it (the last word from the
        engine holds until the next), at most ``queue_credit_max``."""
        waiting = self._credit + (now - self._queued_since if self._queued_since else 0.0)
        return self._deadline + min(waiting, self._queue_credit_max)

    def result(self, timeout_s: float | None = None) -> Any:
        """Block until the final reply and return the decoded result JSON.

        Args:
            timeout_s: extra bound on the wait in seconds (the request's own timeout still
                applies); None waits for the request's timeout.

        Raises:
            ReplyError, EngineBusy, EngineTimeout, EngineRestarted.
        """
        try:
            return self._future.result(timeout=timeout_s)
        except FutureTimeout:
            raise EngineTimeout(
                f"{self.address} (id {self.id}): no reply within {timeout_s} s"
            ) from None

    def done(self) -> bool:
        """True once the final reply (or a timeout) arrived."""
        return self._future.done()

    def add_done_callback(self, fn: Callable[[Pending], None]) -> None:
        """Call ``fn(self)`` when the request completes: on the receive thread, or at once on
        this thread if it already has."""
        self._future.add_done_callback(lambda _f: fn(self))

    def exception(self) -> BaseException | None:
        """The error the request ended with, None on success (only once :meth:`done`)."""
        return self._future.exception(timeout=0)

    def cancel(self) -> None:
        """Ask the engine to cancel this request; its final reply becomes a 'cancelled' error."""
        if not self.done():
            self._client.submit(protocol.CANCEL, {"target": self.id})

    def _finish(self, *, result: Any = None, error: BaseException | None = None) -> bool:
        if self._future.done():
            return False
        if error is None:
            self._future.set_result(result)
        else:
            self._future.set_exception(error)
        return True


class EngineClient:
    """Talks to a running engine over UDP/OSC.

    Args:
        host: the engine's host (default loopback).
        port: the engine's UDP port.
        token: the engine's shared token ("" when it runs without one).
        timeout_s: default time a request may take, from first send to final reply. The
            time it waits with other queued requests ahead of it (the engine says so each
            time it acknowledges it: ``position`` > 0; the job running is not "ahead") is not
            counted, up to :data:`MAX_QUEUE_CREDIT` times the timeout, so a long queue of
            slow regions does not run the last ones out of time before their work starts.
        retries: times an unanswered request is re-sent (same id: the engine answers once).
        retry_interval_s: silence after which an unacknowledged request is re-sent.
        probe_interval_s: while a request the engine accepted waits, the client pings the
            engine this often; a ping answered by another engine instance, or two in a row not
            answered at all, end the waiting requests with :class:`EngineRestarted` at once
            instead of letting them run into their timeout.
        reask_interval_s: an accepted request the engine has said nothing about for this long
            is sent again under its id: the engine acknowledges it again while it holds it
            (``on_accepted`` hears its queue position then) and sends its final reply again
            when it has finished it, so a final reply lost on the way (a full receive buffer
            under load) costs this long, not the request's whole timeout.
    """

    def __init__(
        self,
        host: str = protocol.DEFAULT_HOST,
        port: int = protocol.DEFAULT_PORT,
        *,
        token: str = "",
        timeout_s: float = 60.0,
        retries: int = 3,
        retry_interval_s: float = 0.5,
        probe_interval_s: float = 1.0,
        reask_interval_s: float = 5.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s}: must be > 0")
        if retries < 0:
            raise ValueError(f"retries={retries}: must be >= 0")
        if reask_interval_s <= 0:
            raise ValueError(f"reask_interval_s={reask_interval_s}: must be > 0")
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        if not infos:
            raise ValueError(f"host={host!r}: cannot be resolved")
        family, _, _, _, addr = next((i for i in infos if i[0] == socket.AF_INET), infos[0])
        self.host = host
        self.port = port
        self.token = token
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_interval_s = retry_interval_s
        self.probe_interval_s = probe_interval_s
        self.reask_interval_s = reask_interval_s
        self._instance: str | None = None  # the engine instance that answered the last probe
        self._confirmed_at = 0.0  # when the probe that instance last answered was first sent
        self._probing = False
        self._last_probe = 0.0
        self._probe_misses = 0  # unanswered probes in a row
        self._addr: tuple[str, int] = (str(addr[0]), int(addr[1]))
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        loopback = ipaddress.ip_address(self._addr[0].split("%")[0]).is_loopback
        self._sock.bind((self._addr[0] if loopback else "", 0))
        self._sock.settimeout(0.05)
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._prefix = uuid.uuid4().hex[:8]
        self._closed = threading.Event()
        self._dispatcher = Dispatcher(strict_timing=False)
        self._dispatcher.map(protocol.ACCEPTED, self._on_accepted)
        self._dispatcher.map(protocol.PROGRESS, self._on_progress)
        self._dispatcher.map(protocol.RESULT, self._on_result)
        self._dispatcher.map(protocol.ERROR, self._on_error)
        self._dispatcher.map(protocol.BUSY, self._on_busy)
        self._thread = threading.Thread(target=self._loop, name="sonicverse-client", daemon=True)
        self._thread.start()

    @property
    def local_port(self) -> int:
        """The UDP port replies arrive on."""
        port: int = self._sock.getsockname()[1]
        return port

    # Requests ------------------------------------------------------------------------------

    def submit(
        self,
        address: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_accepted: Callable[[int], None] | None = None,
        request_id: str | None = None,
    ) -> Pending:
        """Send a request without waiting.

        Args:
            address: a request address of :data:`daw_bridge.protocol.REQUESTS` (or its short
                form, ``"region/annotate"``).
            args: the body arguments by name (header arguments are filled in).
            timeout_s: time allowed for the final reply; None = the client's default.
            on_progress: called with ``(stage, done, total)`` on the receive thread.
            on_accepted: called with the queue position once the engine queued it (and
                again whenever a long wait asks the engine after it).
            request_id: reuse an id (to re-ask for a reply); None = a fresh unique id.

        Raises:
            daw_bridge.protocol.ProtocolError: unknown address or bad arguments (nothing sent).
        """
        if self._closed.is_set():
            raise BridgeError("the client is closed")
        message = protocol.resolve(address)
        if message.direction != "request":
            raise protocol.ProtocolError(
                "unknown_address", f"{message.path} is a reply, not a request"
            )
        rid = request_id or f"{self._prefix}-{next(self._ids)}"
        values = {"id": rid, "reply_port": 0, "token": self.token, **(args or {})}
        builder = OscMessageBuilder(address=message.path)
        for tag, value in protocol.encode(message, values):
            builder.add_arg(value, tag)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        pending = Pending(
            self,
            rid,
            message.path,
            builder.build().dgram,
            deadline=time.monotonic() + timeout,
            queue_credit_max=MAX_QUEUE_CREDIT * timeout,
            on_progress=on_progress,
            on_accepted=on_accepted,
        )
        with self._lock:
            self._pending[rid] = pending
            self._send(pending)
        if message.queued and self._instance is None:
            self._probe_engine()  # learn which engine instance will hold it
        return pending

    def request(
        self,
        address: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Any:
        """Send a request and block until its final reply.

        Returns:
            The decoded result JSON.

        Raises:
            ReplyError: the engine answered an error (``.code``, ``.message``).
            EngineBusy: the engine's queue was full.
            EngineTimeout: no final reply within ``timeout_s``.
            EngineRestarted: the engine restarted or stopped while the request waited.
            daw_bridge.protocol.ProtocolError: bad address or arguments (nothing sent).
        """
        return self.submit(address, args, timeout_s=timeout_s, on_progress=on_progress).result()

    def ping(self, *, timeout_s: float = 2.0) -> dict[str, Any]:
        """``/sonicverse/engine/ping``: the engine's protocol version, preset and backend."""
        result: dict[str, Any] = self.request(protocol.PING, timeout_s=timeout_s)
        return result

    def status(self, *, timeout_s: float = 2.0) -> dict[str, Any]:
        """``/sonicverse/engine/status``: queue depth, running request, uptime."""
        result: dict[str, Any] = self.request(protocol.STATUS, timeout_s=timeout_s)
        return result

    def cancel(self, request_id: str, *, timeout_s: float = 2.0) -> dict[str, Any]:
        """``/sonicverse/job/cancel``: ``{"target", "cancelled", "state"}``."""
        result: dict[str, Any] = self.request(
            protocol.CANCEL, {"target": request_id}, timeout_s=timeout_s
        )
        return result

    def annotate_region(
        self,
        path: str,
        start_s: float,
        end_s: float,
        *,
        track: str = "",
        name: str = "",
        lyrics: str = "",
        channels: Sequence[str] = (),
        in_track: bool = False,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """``/sonicverse/region/annotate``: a ``RegionAnnotation.to_dict()``.

        Args:
            channels: the region's other channel files when a DAW keeps one file a channel
                (a stereo Ardour region's right channel); analysed with ``path`` as one signal.
            in_track: the region is one of a track's regions (a microphone window, a region
                the caller narrates next), analysed as those are, not as a region alone.
        """
        result: dict[str, Any] = self.request(
            protocol.ANNOTATE,
            {
                "path": path,
                "start_s": start_s,
                "end_s": end_s,
                "track": track,
                "name": name,
                "lyrics": lyrics,
                "channels": json.dumps([str(p) for p in channels]) if channels else "",
                "in_track": int(in_track),
            },
            timeout_s=timeout_s,
            on_progress=on_progress,
        )
        return result

    def narrate(
        self,
        path: str,
        *,
        track: str = "",
        regions: Sequence[tuple[float, float, str]] | None = None,
        timeout_s: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """``/sonicverse/track/narrate``: a ``TrackResult.to_dict()`` (regions + narrative).

        Args:
            path: the bounced track or mix.
            track: the DAW track name.
            regions: ``(start_s, end_s, name)`` spans in the file; None = the whole file cut
                into the preset's region length.
        """
        spans = (
            ""
            if regions is None
            else json.dumps([[float(s), float(e), str(n)] for s, e, n in regions])
        )
        result: dict[str, Any] = self.request(
            protocol.NARRATE,
            {"path": path, "track": track, "regions": spans},
            timeout_s=timeout_s,
            on_progress=on_progress,
        )
        return result

    def annotations(self, path: str, *, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """``/sonicverse/track/annotations``: the stored annotations of ``path``."""
        result = self.request(protocol.ANNOTATIONS, {"path": path}, timeout_s=timeout_s)
        regions: list[dict[str, Any]] = result["regions"]
        return regions

    def close(self) -> None:
        """Stop the receive thread, fail requests still in flight, close the socket."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for p in pending:
            p._finish(error=BridgeError(f"{p.address} (id {p.id}): client closed"))
        self._sock.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Receive thread -------------------------------------------------------------------------

    def _send(self, pending: Pending, *, retry: bool = True) -> None:
        pending._sends += retry
        pending._last_sent = time.monotonic()
        try:
            self._sock.sendto(pending._dgram, self._addr)
        except OSError as exc:
            log.warning("sending %s (id %s) failed: %s", pending.address, pending.id, exc)

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                data, _ = self._sock.recvfrom(65536)
            except (TimeoutError, BlockingIOError):
                data = b""
            except OSError as exc:
                if self._closed.is_set():
                    return
                log.warning("receive failed: %s", exc)
                time.sleep(0.05)
                continue
            if data:
                self._handle(data)
                # read whatever else has arrived before any deadline is judged: after a stall
                # (a callback that took long, a starved process) a reply may be waiting
                # behind others, and the request it answers must not expire first
                for _ in range(DRAIN_MAX):
                    more = self._arrived()
                    if more is None:
                        break
                    self._handle(more)
            self._housekeeping()

    def _arrived(self) -> bytes | None:
        """A datagram that has already arrived, or None; never waits."""
        if self._closed.is_set():
            return None
        try:
            if _DONTWAIT:
                data, _ = self._sock.recvfrom(65536, _DONTWAIT)
                return data
            if not select.select([self._sock], [], [], 0)[0]:  # Windows: no MSG_DONTWAIT
                return None
            data, _ = self._sock.recvfrom(65536)
            return data
        except (OSError, ValueError):  # nothing there (BlockingIOError), or closed meanwhile
            return None

    def _handle(self, data: bytes) -> None:
        try:
            self._dispatcher.call_handlers_for_packet(data, self._addr)
        except Exception:
            log.exception("malformed reply (%d bytes) ignored", len(data))

    def _housekeeping(self) -> None:
        now = time.monotonic()
        expired: list[Pending] = []
        probe = False
        with self._lock:
            for p in list(self._pending.values()):
                probe = probe or (p.accepted and now - self._last_probe >= self.probe_interval_s)
                if now >= p.expires(now):
                    expired.append(self._pending.pop(p.id))
                    continue
                quiet = now - max(p._last_sent, p._last_heard)
                if p.accepted:
                    # ask again under its id (not counted against ``retries``; the deadline
                    # bounds it): the engine acknowledges it or replays its final reply; soon
                    # when parts of that reply are missing, after a quiet spell otherwise
                    wait = self.retry_interval_s if p._parts else self.reask_interval_s
                    if quiet >= wait:
                        log.debug("asking again for %s (id %s)", p.address, p.id)
                        self._send(p, retry=False)
                    continue
                if quiet < self.retry_interval_s:
                    continue
                if p._sends <= self.retries:
                    log.debug("re-sending %s (id %s)", p.address, p.id)
                    self._send(p)
                elif not p._last_heard:
                    expired.append(self._pending.pop(p.id))
        for p in expired:
            heard = (
                "accepted, then silence"
                if p.accepted
                else (
                    "no answer at all: is `sonicverse engine` running there?"
                    if not p._last_heard
                    else "no final reply"
                )
            )
            p._finish(
                error=EngineTimeout(
                    f"{p.address} (id {p.id}) to {self.host}:{self.port}: timed out "
                    f"(sent {p._sends} time(s); {heard})"
                )
            )
        if probe and not self._closed.is_set():
            self._probe_engine()

    def _probe_engine(self) -> None:
        """Ping the engine (one probe at a time) to learn whether the instance that accepted
        the waiting requests still runs; :meth:`_on_probe` reads the answer."""
        with self._lock:
            if self._probing:
                return
            self._probing = True
            self._last_probe = sent_at = time.monotonic()
        try:
            probe = self.submit(protocol.PING, timeout_s=max(2.0, 4 * self.retry_interval_s))
        except BridgeError:  # closed meanwhile
            self._probing = False
            return
        probe.add_done_callback(lambda p: self._on_probe(p, sent_at))

    def _on_probe(self, probe: Pending, sent_at: float) -> None:
        """Read a probe's answer. A request the old instance surely held (sent, and so
        received, before a probe it answered: datagrams from one socket arrive in order; a
        re-ask of it too) is lost: it fails with :class:`EngineRestarted`. Any other
        accepted request may be held by either instance, so it is sent again under its id,
        as if new: the new instance acknowledges a request it holds (or replays its reply)
        and queues one it never saw, so either way it completes; one the new instance never
        answers expires as unanswered once its retries are spent."""
        where = f"{self.host}:{self.port}"
        resend: list[Pending] = []
        lost: list[Pending] = []
        with self._lock:
            self._probing = False
            if self._closed.is_set():
                return
            if not isinstance(probe.exception(), EngineTimeout):
                self._probe_misses = 0
            if probe.exception() is None:
                instance = probe.result().get("instance")
                if not isinstance(instance, str):
                    return  # an engine that does not name its instance
                previous, self._instance = self._instance, instance
                confirmed_at, self._confirmed_at = self._confirmed_at, sent_at
                if previous is None or previous == instance:
                    return
                reason = f"a new engine instance answers at {where}"
                # surely lost: every copy of it (a re-ask included) was sent before a probe
                # the old instance answered, so each reached the old instance
                lost = [
                    self._pending.pop(p.id)
                    for p in list(self._pending.values())
                    if p.accepted and p._last_sent <= confirmed_at
                ]
                resend = [p for p in self._pending.values() if p.accepted]
                for p in resend:
                    p.accepted, p._parts, p._sends = False, {}, 0
                    p._accepted_at = p._last_heard = p._queued_since = 0.0
                    p.position = -1
                    self._send(p)
            elif isinstance(probe.exception(), EngineTimeout):
                # one probe may go unanswered while the engine stalls for a moment on a busy
                # machine; the next goes out at once (its interval has passed)
                self._probe_misses += 1
                if self._probe_misses < PROBE_MISSES:
                    return
                self._probe_misses = 0
                reason = f"the engine at {where} stopped answering"
                lost = [
                    self._pending.pop(p.id)
                    for p in list(self._pending.values())
                    if p.accepted and 0.0 < p._accepted_at < sent_at
                ]
            else:
                return  # an engine that answers, if not with a pong (a wrong token): still there
        for p in resend:
            log.info("%s (id %s): asked the new engine instance again", p.address, p.id)
        for p in lost:
            log.warning("%s (id %s): engine restarted (%s)", p.address, p.id, reason)
            p._finish(
                error=EngineRestarted(
                    f"engine restarted: {reason} while {p.address} (id {p.id}) waited, and "
                    "its work on it is lost; ask again",
                    p.id,
                )
            )

    def _get(self, request_id: Any) -> Pending | None:
        """The pending request ``request_id``, marked as heard from (and accepted: every
        reply the engine sends for a request means it holds it)."""
        if not isinstance(request_id, str):
            return None
        with self._lock:
            p = self._pending.get(request_id)
            if p is not None:
                p._last_heard = time.monotonic()
                p.accepted = True
                p._accepted_at = p._accepted_at or p._last_heard
            return p

    def _pop(self, request_id: str) -> Pending | None:
        with self._lock:
            return self._pending.pop(request_id, None)

    def _queued(self, p: Pending, waiting: bool) -> None:
        """Note whether the engine says other queued requests are ahead of ``p``: the time
        from such a word to the next word about it is credited to its deadline
        (:meth:`Pending.expires`; waiting in the queue is not the engine's time on it)."""
        with self._lock:
            now = time.monotonic()
            if p._queued_since:
                p._credit += now - p._queued_since
            p._queued_since = now if waiting else 0.0

    def _on_accepted(self, _address: str, *params: Any) -> None:
        p = self._get(params[0] if params else None)
        if p is None or len(params) < 2:
            return
        p.position = int(params[1])
        self._queued(p, p.position > 0)
        if p._on_accepted is not None:
            self._safe(p._on_accepted, p.position)

    def _on_progress(self, _address: str, *params: Any) -> None:
        p = self._get(params[0] if params else None)
        if p is None or len(params) < 4:
            return
        if p._queued_since:
            self._queued(p, False)  # its work has started
        if p._on_progress is not None:
            self._safe(p._on_progress, str(params[1]), int(params[2]), int(params[3]))

    def _on_result(self, _address: str, *params: Any) -> None:
        p = self._get(params[0] if params else None)
        if p is None or len(params) < 4:
            return
        part, parts, text = params[1], params[2], params[3]
        p._parts[int(part)] = str(text)
        if len(p._parts) < int(parts):
            return
        if self._pop(p.id) is None:
            return
        try:
            result = json.loads("".join(p._parts[i] for i in range(int(parts))))
        except (KeyError, ValueError) as exc:
            p._finish(error=ReplyError("internal", f"undecodable result: {exc}", p.id))
            return
        p._finish(result=result)

    def _on_error(self, _address: str, *params: Any) -> None:
        if len(params) < 3:
            return
        p = self._pop(params[0]) if isinstance(params[0], str) else None
        if p is not None:
            p._finish(error=ReplyError(str(params[1]), str(params[2]), p.id))
        else:
            log.debug("error reply for no pending request: %s", params)

    def _on_busy(self, _address: str, *params: Any) -> None:
        if len(params) < 3 or not isinstance(params[0], str):
            return
        p = self._pop(params[0])
        if p is not None:
            p._finish(error=EngineBusy(p.id, int(params[1]), int(params[2])))

    @staticmethod
    def _safe(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("client callback %r failed", fn)
