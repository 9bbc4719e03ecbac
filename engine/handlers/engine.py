"""``/sonicverse/engine/*``: is the engine up, and what is it doing (answered at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daw_bridge import protocol

if TYPE_CHECKING:
    from engine.server import EngineServer, Job


def ping(server: EngineServer, job: Job) -> dict[str, Any]:
    """``engine/ping``: the protocol version, preset, backend and this engine run's instance id."""
    return {
        "pong": True,
        "protocol_version": protocol.PROTOCOL_VERSION,
        "preset": server.annotator.preset.name,
        "backend": server.annotator.backend.name,
        "instance": server.instance,
    }


def status(server: EngineServer, job: Job) -> dict[str, Any]:
    """``engine/status``: queue depth and capacity, the running request, uptime."""
    return {
        "protocol_version": protocol.PROTOCOL_VERSION,
        "preset": server.annotator.preset.name,
        "backend": server.annotator.backend.name,
        "queued": server.queued(),
        "capacity": server.config.queue_size,
        "running": server.running_id(),
        "uptime_s": round(server.uptime_s(), 3),
        "served": server.served,
        "token_required": bool(server.config.token),
        "roots": [str(r) for r in server.roots],
        "instance": server.instance,
    }
