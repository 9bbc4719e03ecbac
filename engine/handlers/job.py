"""``/sonicverse/job/*``: requests as jobs (answered at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.server import EngineServer, Job


def cancel(server: EngineServer, job: Job) -> dict[str, Any]:
    """``job/cancel``: cancel a queued or running request; its own final reply says so."""
    target = job.args["target"]
    state = server.cancel(target)
    return {"target": target, "cancelled": state != "unknown", "state": state}
