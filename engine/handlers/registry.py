"""Each OSC request address to its handler: :data:`DIRECT` ones are answered at once by the
network thread, :data:`QUEUED` ones by the worker that owns the models."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daw_bridge import protocol
from engine.handlers import engine, job, region, track

if TYPE_CHECKING:
    from engine.server import EngineServer, Job

Handler = Callable[["EngineServer", "Job"], dict[str, Any]]

DIRECT: dict[str, Handler] = {
    protocol.PING: engine.ping,
    protocol.STATUS: engine.status,
    protocol.CANCEL: job.cancel,
}
QUEUED: dict[str, Handler] = {
    protocol.ANNOTATE: region.annotate,
    protocol.NARRATE: track.narrate,
    protocol.ANNOTATIONS: track.records,
    protocol.PLAN: track.plan,
}
assert set(DIRECT) | set(QUEUED) == set(protocol.REQUESTS)
