"""The panel's connection to the engine: OSC requests whose replies arrive as Qt signals.

:class:`EngineLink` wraps :class:`daw_bridge.client.EngineClient`. The client calls back on
its receive thread; every callback here only emits a signal, which Qt queues to the GUI
thread, so the GUI never waits on the network. A heartbeat ping tells when the engine goes
away (one unanswered ping is asked again at once; two in a row, or an error, mean gone);
requests still in flight then fail with a message naming the engine's address instead of
leaving rows spinning. :meth:`EngineLink.start_engine` runs ``sonicverse engine`` as a
child process when none answers.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from PyQt6.QtCore import QObject, QProcess, Qt, QTimer, pyqtSignal

from daw_bridge import protocol
from daw_bridge.client import (
    BridgeError,
    EngineBusy,
    EngineClient,
    EngineTimeout,
    Pending,
    ReplyError,
)

log = logging.getLogger(__name__)


def engine_command(command: str, *args: str) -> tuple[str, list[str]]:
    """Program and arguments that run ``sonicverse <command> <args>`` with this Python.

    The panel starts the engine and the listener as child processes; it never imports them.
    """
    return sys.executable, ["-m", "engine.cli", command, *args]


# Regions a panel keeps at the engine at once; the rest wait in the panel. The engine queues
# 32 requests by default and answers more with ``busy``: a long track's regions (36 for a
# 6-minute song at 10 s) sent together would overflow it, and other clients share it.
MAX_REGIONS_IN_FLIGHT = 8
BUSY_RETRY_S = 1.0  # an engine that answered ``busy`` is asked again after this long
# Unanswered pings in a row before an engine that was up counts as down and its requests
# fail: one ping lost or late (a datagram dropped, an engine stalled for a moment on a busy
# machine) is asked again at once instead of failing every region in flight.
MISSES_BEFORE_DOWN = 2


@dataclass
class _Request:
    kind: str  # "annotate", "narrate" or "plan"
    pending: Pending
    region_id: str = ""
    revision: int = 0
    held: _Held | None = None  # what was asked (a region asked again when the engine is busy)


@dataclass
class _Held:
    """A region's annotation asked for and not yet sent (the engine has enough of ours)."""

    region_id: str
    revision: int
    args: dict[str, Any]
    busy_since: float = 0.0  # monotonic time the engine first answered busy to it


def describe_error(exc: BaseException | None) -> str:
    """One line for a failed request."""
    if isinstance(exc, ReplyError):
        return f"{exc.code}: {exc.message}"
    return str(exc) if exc is not None else "unknown error"


class EngineLink(QObject):
    """Requests to one engine; replies as signals on the GUI thread.

    Args:
        host: the engine's host.
        port: the engine's UDP port.
        timeout_s: time a request may take, from sending to its final reply (the time it
            waits with other queued requests ahead of it is not counted; see
            :class:`daw_bridge.client.EngineClient`).
        heartbeat_ms: interval of the liveness ping (0 = no heartbeat).
        max_regions_in_flight: regions sent to the engine at once; more wait in the panel
            (shown as queued) and go as answers come back. One the engine answers ``busy``
            (its queue full of other clients' requests) waits and is sent again, for up to
            ``timeout_s``.

    Signals:
        stateChanged(state, detail): ``"up"`` (detail: preset/backend), ``"down"`` (detail:
            why), ``"starting"`` (an engine process is starting).
        regionProgress(region_id, revision, stage, done, total)
        regionResult(region_id, revision, annotation_dict)
        regionFailed(region_id, revision, message)
        narrativeProgress(stage, done, total)
        narrativeResult(track_result_dict)
        narrativeFailed(message)
    """

    stateChanged = pyqtSignal(str, str)
    regionProgress = pyqtSignal(str, int, str, int, int)
    regionResult = pyqtSignal(str, int, dict)
    regionFailed = pyqtSignal(str, int, str)
    narrativeProgress = pyqtSignal(str, int, int)
    narrativeResult = pyqtSignal(dict)
    narrativeFailed = pyqtSignal(str)
    planResult = pyqtSignal(dict)  # the engine's default regions of a file (track/plan)
    planFailed = pyqtSignal(str)
    _pinged = pyqtSignal(bool, object)
    _finished = pyqtSignal(str)

    def __init__(
        self,
        host: str = protocol.DEFAULT_HOST,
        port: int = protocol.DEFAULT_PORT,
        *,
        timeout_s: float = 300.0,
        heartbeat_ms: int = 2000,
        max_regions_in_flight: int = MAX_REGIONS_IN_FLIGHT,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if max_regions_in_flight < 1:
            raise ValueError(f"max_regions_in_flight={max_regions_in_flight}: expected >= 1")
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.state = "unknown"
        self.info: dict[str, Any] = {}
        self.process: QProcess | None = None
        self.last_exit = ""  # how the last engine process we started ended
        self._client = EngineClient(host, port, timeout_s=timeout_s, retries=3)
        self._requests: dict[str, _Request] = {}
        self.max_regions_in_flight = max_regions_in_flight
        self._held: dict[str, _Held] = {}  # by region id, in the order asked
        self._latest: dict[str, int] = {}  # the revision last asked for, by region id
        self._busy_until = 0.0
        self._pump_timer = QTimer(self)
        self._pump_timer.setSingleShot(True)
        self._pump_timer.timeout.connect(self._pump)
        self._pinging = False
        self._missed = 0  # unanswered pings in a row while the engine was up
        self._ping_timeout_s = 1.5
        # queued even when emitted on the GUI thread: a request that completed before
        # ``add_done_callback`` ran calls back at once, on the caller's thread, and the
        # caller must return (and note what it asked) before its answer is read
        queued = Qt.ConnectionType.QueuedConnection
        self._pinged.connect(self._on_pinged, queued)
        self._finished.connect(self._on_finished, queued)
        self._heartbeat = QTimer(self)
        self._heartbeat.timeout.connect(self.check)
        if heartbeat_ms > 0:
            self._heartbeat.start(heartbeat_ms)

    @property
    def address(self) -> str:
        """``host:port`` of the engine."""
        return f"{self.host}:{self.port}"

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._requests)

    @property
    def waiting(self) -> int:
        """Regions asked for and not sent yet (the engine has enough of ours)."""
        return len(self._held)

    # Liveness -------------------------------------------------------------------------------

    def check(self, timeout_s: float = 1.5) -> None:
        """Ping the engine; :attr:`stateChanged` follows when its state changes."""
        if self._pinging:
            return
        self._pinging = True
        self._ping_timeout_s = timeout_s
        try:
            pending = self._client.submit(protocol.PING, timeout_s=timeout_s)
        except BridgeError as exc:
            self._pinging = False
            self._set_state("down", str(exc))
            return
        pending.add_done_callback(
            lambda p: self._pinged.emit(p.exception() is None, p.exception() or p.result())
        )

    def _on_pinged(self, ok: bool, payload: Any) -> None:
        self._pinging = False
        if ok:
            self._missed = 0
            self.info = dict(payload)
            preset, backend = self.info.get("preset", "?"), self.info.get("backend", "?")
            self._set_state("up", f"{preset} ({backend})")
            return
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self._set_state("starting", f"engine process starting on port {self.port}")
            return
        if isinstance(payload, EngineTimeout) and self.state == "up" and self.process is None:
            # (an engine process of ours that has exited is gone: no second ping for it)
            self._missed += 1
            if self._missed < MISSES_BEFORE_DOWN:
                log.info("engine at %s missed a ping; asking again", self.address)
                self.check(self._ping_timeout_s)
                return
        self._missed = 0
        why = (
            f"no engine answers at {self.address}"
            if isinstance(payload, EngineTimeout)
            else describe_error(payload)
        )
        if self.last_exit:
            why += f" ({self.last_exit})"
        self._set_state("down", why)
        self._fail_all(f"engine at {self.address} stopped answering")

    def _set_state(self, state: str, detail: str) -> None:
        changed = state != self.state
        self.state = state
        if changed or state == "down":
            self.stateChanged.emit(state, detail)

    def _take_all(self) -> tuple[dict[str, _Request], dict[str, _Held]]:
        """Every request in flight and every region waiting, no longer tracked."""
        requests, self._requests = self._requests, {}
        held, self._held = self._held, {}
        self._latest.clear()
        return requests, held

    def _fail_all(self, message: str) -> None:
        """Fail every request in flight or waiting (the engine is gone); later replies are
        ignored."""
        requests, held = self._take_all()
        for rid, req in requests.items():
            self._report_failure(req, message)
            log.info("request %s failed: %s", rid, message)
        for h in held.values():
            self.regionFailed.emit(h.region_id, h.revision, message)

    def forget_all(self) -> None:
        """Drop every request in flight or waiting without a word (another file was opened,
        or the engine is restarted with another preset): the engine is asked to cancel them,
        and their replies are never reported."""
        requests, _ = self._take_all()
        self._cancel_quietly(requests.values())

    @staticmethod
    def _cancel_quietly(requests: Iterable[_Request]) -> None:
        """Ask the engine to cancel ``requests`` (no longer tracked: never reported)."""
        for req in requests:
            with contextlib.suppress(BridgeError):  # a closed client has nothing to cancel
                req.pending.cancel()

    # Requests -------------------------------------------------------------------------------

    def annotate(
        self, region_id: str, revision: int, path: str, start_s: float, end_s: float, name: str = ""
    ) -> None:
        """Ask for one region's annotation; the reply comes as regionResult / regionFailed.

        It is sent at once while fewer than ``max_regions_in_flight`` regions are at the
        engine, otherwise when one comes back; asking again for a region still waiting
        replaces what it asks.
        """
        # the panel narrates its regions once they are done: they are the track's regions,
        # and the narrative answers from the store
        args = {
            "path": path,
            "start_s": float(start_s),
            "end_s": float(end_s),
            "name": name,
            "in_track": 1,
        }
        self._held.pop(region_id, None)  # the newer ask goes to the back
        self._held[region_id] = _Held(region_id, revision, args)
        self._latest[region_id] = revision
        self._pump()

    def forget(self, region_id: str) -> None:
        """Drop a region's requests (it was deleted, moved or replaced): one waiting is not
        sent, one at the engine is cancelled there, and neither is reported."""
        self._held.pop(region_id, None)
        self._latest.pop(region_id, None)
        ids = [
            rid
            for rid, req in self._requests.items()
            if req.kind == "annotate" and req.region_id == region_id
        ]
        self._cancel_quietly([self._requests.pop(rid) for rid in ids])
        # refill the freed slot once the caller is done (it may be forgetting many regions,
        # whose waiting requests must not be sent meanwhile)
        self._pump_timer.start(0)

    def _pump(self) -> None:
        """Send waiting regions while the engine has room for them."""
        wait = self._busy_until - time.monotonic()
        if wait > 0:
            self._pump_timer.start(int(wait * 1000) + 1)
            return
        while self._held:
            sent = sum(1 for r in self._requests.values() if r.kind == "annotate")
            if sent >= self.max_regions_in_flight:
                return
            region_id = next(iter(self._held))
            held = self._held.pop(region_id)

            def progress(stage: str, done: int, total: int, h: _Held = held) -> None:
                self.regionProgress.emit(h.region_id, h.revision, stage, done, total)

            self._submit(
                "annotate",
                protocol.ANNOTATE,
                held.args,
                progress,
                held.region_id,
                held.revision,
                held=held,
            )

    def narrate(self, path: str, regions: Sequence[tuple[float, float, str]]) -> str:
        """Ask for the narrative over ``regions`` (the engine answers from its store)."""
        import json

        spans = json.dumps([[float(s), float(e), str(n)] for s, e, n in regions])
        return self._submit(
            "narrate",
            protocol.NARRATE,
            {"path": path, "regions": spans},
            self.narrativeProgress.emit,
        )

    def plan(self, path: str) -> str:
        """Ask for the engine's default regions of ``path`` (its preset's plan, on bar lines
        when the preset snaps to them); the reply comes as planResult / planFailed."""
        return self._submit("plan", protocol.PLAN, {"path": path}, lambda *_: None)

    def _submit(
        self,
        kind: str,
        address: str,
        args: dict[str, Any],
        on_progress: Any,
        region_id: str = "",
        revision: int = 0,
        *,
        held: _Held | None = None,
    ) -> str:
        try:
            pending = self._client.submit(address, args, on_progress=on_progress)
        except (BridgeError, protocol.ProtocolError) as exc:
            if kind == "annotate":
                self.regionFailed.emit(region_id, revision, str(exc))
            elif kind == "plan":
                self.planFailed.emit(str(exc))
            else:
                self.narrativeFailed.emit(str(exc))
            return ""
        self._requests[pending.id] = _Request(kind, pending, region_id, revision, held)
        pending.add_done_callback(lambda p: self._finished.emit(p.id))
        return pending.id

    def _on_finished(self, request_id: str) -> None:
        req = self._requests.pop(request_id, None)
        if req is None:
            return  # already failed when the engine went down, or forgotten
        exc = req.pending.exception()
        h = req.held
        if isinstance(exc, EngineBusy) and h is not None:
            now = time.monotonic()
            h.busy_since = h.busy_since or now
            if (
                now - h.busy_since < self.timeout_s
                and self._latest.get(h.region_id) == h.revision
                and h.region_id not in self._held
            ):
                # the engine's queue is full (of other clients' requests): ask again shortly,
                # first in line, unless the region was asked for anew or dropped meanwhile
                self._held = {h.region_id: h, **self._held}
                self._busy_until = now + BUSY_RETRY_S
                self._pump()
                return
        if exc is not None:
            self._report_failure(req, describe_error(exc))
        elif req.kind == "annotate":
            self.regionResult.emit(req.region_id, req.revision, req.pending.result())
        elif req.kind == "plan":
            self.planResult.emit(req.pending.result())
        else:
            self.narrativeResult.emit(req.pending.result())
        if req.kind == "annotate":
            self._pump()

    def _report_failure(self, req: _Request, message: str) -> None:
        if req.kind == "annotate":
            self.regionFailed.emit(req.region_id, req.revision, message)
        elif req.kind == "plan":
            self.planFailed.emit(message)
        else:
            self.narrativeFailed.emit(message)

    def cancel_all(self) -> None:
        """Ask the engine to cancel everything this panel has in flight; regions not sent
        yet fail as cancelled at once."""
        held, self._held = self._held, {}
        for h in held.values():
            self.regionFailed.emit(h.region_id, h.revision, "cancelled: not sent yet")
        for req in list(self._requests.values()):
            req.held = None  # a busy answer already on its way is not asked again
            req.pending.cancel()

    # Engine process -------------------------------------------------------------------------

    def start_engine(self, preset: str) -> None:
        """Run ``sonicverse engine --preset <preset> --port <port>`` as a child process."""
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            return
        program, args = engine_command(
            "engine", "--preset", preset, "--host", self.host, "--port", str(self.port)
        )
        self.last_exit = ""
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.finished.connect(lambda code, _status: self._on_engine_exit(proc, code))
        proc.errorOccurred.connect(lambda err: self._on_engine_error(proc, err))
        self.process = proc
        self._set_state("starting", f"starting engine with preset {preset} on port {self.port}")
        proc.start(program, args)
        QTimer.singleShot(300, self.check)

    def _on_engine_error(self, proc: QProcess, err: QProcess.ProcessError) -> None:
        if err != QProcess.ProcessError.FailedToStart:
            return  # crashes also end with finished, handled there
        if proc is self.process:
            self.process = None
        self.last_exit = f"engine process could not start ({proc.errorString()})"
        self._set_state("down", self.last_exit)

    def _on_engine_exit(self, proc: QProcess, code: int) -> None:
        output = bytes(proc.readAll().data()).decode(errors="replace").strip().splitlines()
        tail = output[-1] if output else ""
        log.warning("engine process exited with status %d: %s", code, "\n".join(output[-5:]))
        if proc is self.process:
            self.process = None
        self.last_exit = f"engine process exited with status {code}: {tail}".strip(": ")
        self._set_state("down", self.last_exit)
        self._fail_all(f"engine process exited (status {code})")

    def restart_engine(self, preset: str) -> None:
        """Stop the engine process this link started and start it again with ``preset``,
        without blocking: the new one starts when the old one has exited and freed the port."""
        proc = self.process
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            self.start_engine(preset)
            return
        proc.finished.disconnect()
        proc.finished.connect(lambda _code, _status: self._restart(proc, preset))
        self._set_state("starting", f"restarting engine with preset {preset}")
        proc.terminate()

    def _restart(self, old: QProcess, preset: str) -> None:
        if old is self.process:
            self.process = None
        self._fail_all("engine restarted with another preset")
        self.start_engine(preset)

    def stop_engine(self) -> None:
        """Terminate the engine process this link started (if any)."""
        proc, self.process = self.process, None
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        proc.finished.disconnect()
        proc.terminate()
        if not proc.waitForFinished(5000):
            proc.kill()
            proc.waitForFinished(2000)

    def close(self) -> None:
        """Stop the heartbeat and the engine process we started, close the socket."""
        self._heartbeat.stop()
        self._pump_timer.stop()
        self.stop_engine()
        self._take_all()
        self._client.close()
