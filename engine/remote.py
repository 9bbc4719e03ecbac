"""A client of a running engine that annotates windows as a backend would.

``sonicverse listen --engine PORT`` sends its windows to the resident engine instead of
loading models a second time; this is that client (it holds no model, it is not a backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.backends.base import no_progress
from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.backends.base import Progress, Segment
    from engine.types import RegionAnnotation, TrackNarrative


class RemoteEngine:
    """Sends each window to a running engine instead of loading models here.

    Audio travels by reference: each window is written to a temporary WAV file whose path is
    sent with ``/sonicverse/region/annotate``; the file is deleted once the reply is in. The
    engine's one worker keeps owning the models (a GPU holds them once, not twice).

    Args:
        host: the engine's host.
        port: the engine's UDP port.
        timeout_s: time one window may take.

    Raises:
        EngineError: no engine answers at ``host:port``.
    """

    name = "engine"
    max_batch = 1
    preset = None  # the engine's answers already carry its track view

    def __init__(self, host: str, port: int, *, timeout_s: float = 30.0) -> None:
        import tempfile

        from daw_bridge.client import BridgeError, EngineClient

        self.client = EngineClient(host, port, timeout_s=timeout_s)
        try:
            info = self.client.ping()
        except BridgeError as exc:
            self.client.close()
            raise EngineError(f"no engine answers at {host}:{port} ({exc})") from exc
        self.fingerprint = f"engine:{host}:{port}:{info.get('preset')}"
        self._folder = tempfile.TemporaryDirectory(prefix="sonicverse-listen-")
        self._count = 0

    def analyze(
        self, segments: Sequence[Segment], *, progress: Progress = no_progress
    ) -> list[RegionAnnotation]:
        """Annotate each window through the engine, in order."""
        import dataclasses

        from daw_bridge.client import BridgeError
        from engine.audio import write
        from engine.types import RegionAnnotation

        out: list[RegionAnnotation] = []
        for i, seg in enumerate(segments):
            self._count += 1
            path = Path(self._folder.name) / f"window-{self._count:06d}.wav"
            write(path, seg.audio.samples, sr=seg.audio.sr, subtype="FLOAT")
            try:
                reply = self.client.annotate_region(
                    str(path), 0.0, seg.audio.duration_s, name=seg.region.name, in_track=True
                )
            except BridgeError as exc:
                where = f"{self.client.host}:{self.client.port}"
                raise EngineError(f"engine at {where}: {exc}") from exc
            finally:
                path.unlink(missing_ok=True)
            ann = RegionAnnotation.from_dict(reply)
            out.append(
                dataclasses.replace(
                    ann, start_s=seg.region.start_s, end_s=seg.region.end_s, name=seg.region.name
                )
            )
            progress("analyze", i + 1, len(segments))
        return out

    def narrate(self, *args: Any, **kwargs: Any) -> TrackNarrative:
        """Live windows are not narrated."""
        raise EngineError("live listening does not narrate")

    def close(self) -> None:
        """Close the connection and remove the temporary folder."""
        self.client.close()
        self._folder.cleanup()
