"""The panel's microphone mode: ``sonicverse listen --jsonl`` as a child process.

The capture and the rolling windows run in ``sonicverse listen`` (engine side); the analysis
runs in the panel's engine when one is up (``--engine``: each window goes there as a
temporary WAV file, by reference), else in the listener with the chosen preset; the panel
reads its JSON lines (declared in :mod:`daw_bridge.live`) from a :class:`QProcess` (no thread
of ours ever blocks) and turns them into signals. Each line carries the monotonic time at
which its window ended, so the panel measures the latency from the end of a window to its
annotation on screen.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PyQt6.QtCore import QObject, QProcess, pyqtSignal

from daw_bridge import live as live_format
from ui.engine_link import engine_command

log = logging.getLogger(__name__)


class LiveCaptioner(QObject):
    """Runs ``sonicverse listen`` and relays what it hears.

    Signals:
        result(dict): one window: ``index``, ``start_s``, ``end_s``, ``t_end``, ``annotation``
            (a ``RegionAnnotation.to_dict()`` or None) and ``error``.
        notice(kind, message): ``overflow``, ``stopped`` (device went away), ``finished``,
            ``error`` (the listener could not start or failed: the message says why).
        runningChanged(bool)
    """

    result = pyqtSignal(dict)
    notice = pyqtSignal(str, str)
    runningChanged = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.latencies_s: list[float] = []
        self._buffer = b""
        self._stderr = b""
        self._ended = False  # the listener already said why it stopped
        self._stopping = False  # we asked it to stop

    @property
    def running(self) -> bool:
        """True while the listener process runs."""
        return self.process is not None and (
            self.process.state() != QProcess.ProcessState.NotRunning
        )

    def start(
        self,
        *,
        preset: str = "lite",
        device: str | None = None,
        file: str | None = None,
        speed: float = 1.0,
        window_s: float = 10.0,
        hop_s: float = 2.0,
        engine: tuple[str, int] | None = None,
    ) -> None:
        """Start listening to ``device`` (or play ``file`` as if it were the microphone).

        Args:
            preset: the preset analysed with when no ``engine`` is given.
            device: input device index or part of its name; None for the default input.
            file: play this file instead of a device.
            speed: with ``file``: playback pace (1.0 = real time).
            window_s: analysis window in seconds.
            hop_s: seconds between analyses.
            engine: ``(host, port)`` of a running engine: windows go through it (its models,
                loaded once) instead of a preset loaded by the listener.
        """
        if self.running:
            return
        args = [
            "listen",
            "--jsonl",
            "--preset",
            preset,
            "--window",
            f"{window_s:g}",
            "--hop",
            f"{hop_s:g}",
        ]
        if engine is not None:
            args += ["--engine", str(engine[1]), "--engine-host", engine[0]]
        if file:
            args += ["--file", file, "--speed", f"{speed:g}"]
        elif device:
            args += ["--device", device]
        program, argv = engine_command(*args)
        proc = QProcess(self)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(lambda: self._read_stderr(proc))
        proc.finished.connect(lambda code, _status: self._on_exit(proc, code))
        proc.errorOccurred.connect(lambda err: self._on_error(proc, err))
        self.process = proc
        self.latencies_s = []
        self._buffer = self._stderr = b""
        self._ended = self._stopping = False
        proc.start(program, argv)
        self.runningChanged.emit(True)

    def stop(self) -> None:
        """Stop listening (the process finishes the window it is on)."""
        proc = self.process
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        self._stopping = True
        proc.terminate()
        if not proc.waitForFinished(3000):
            proc.kill()
            proc.waitForFinished(2000)

    def record_shown(self, t_end: float) -> float:
        """Note that the annotation of a window ending at ``t_end`` is now on screen.

        Returns:
            The latency in seconds.
        """
        latency = time.monotonic() - t_end
        self.latencies_s.append(latency)
        return latency

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the latencies so far, in ms (NaN when none)."""
        if not self.latencies_s:
            return float("nan")
        return float(np.percentile(self.latencies_s, q)) * 1000.0

    def _read_stdout(self) -> None:
        assert self.process is not None
        self._buffer += self.process.readAllStandardOutput().data()
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                item = live_format.decode(line)
            except live_format.LiveFormatError as exc:
                log.warning("unreadable line from listen: %s", exc)
                continue
            if isinstance(item, live_format.LiveEvent):
                if item.kind in live_format.ENDING_EVENTS:
                    self._ended = True
                self.notice.emit(item.kind, item.message)
            else:
                self.result.emit(item.to_dict())

    def _read_stderr(self, proc: QProcess) -> None:
        self._stderr = (self._stderr + proc.readAllStandardError().data())[-4096:]

    def _on_exit(self, proc: QProcess, code: int) -> None:
        if proc is not self.process:
            return
        self._read_stdout()
        self._read_stderr(proc)
        self.process = None
        crashed = proc.exitStatus() == QProcess.ExitStatus.CrashExit
        if not self._ended and not self._stopping and (code != 0 or crashed):
            lines = self._stderr.decode(errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"listen exited with status {code}"
            self.notice.emit("error", why.removeprefix("error: "))
        self.runningChanged.emit(False)

    def _on_error(self, proc: QProcess, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.notice.emit("error", f"cannot start sonicverse listen ({proc.errorString()})")
            self.process = None
            self.runningChanged.emit(False)
