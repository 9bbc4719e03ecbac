"""``/sonicverse/track/*``: a whole track (run by the worker that owns the models)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.server import EngineServer, Job

log = logging.getLogger(__name__)


def narrate(server: EngineServer, job: Job) -> dict[str, Any]:
    """``track/narrate``: the track's regions (or the default plan), its beat grid and its
    narrative, from every channel file when the track is kept as one file a channel."""
    a = job.args
    result = server.annotator.annotate(
        a["path"],
        a["regions"],
        narrate=True,
        progress=server.progress(job),
        cancelled=job.cancel.is_set,
        file=job.file,
        channels=a["channels"],
        channel_files=job.channel_files,
    )
    log.debug(
        "narrated %s (+%d channel files; track %r, %d regions)",
        a["path"],
        len(a["channels"]),
        a["track"],
        len(result.regions),
    )
    out: dict[str, Any] = result.to_dict()
    return out


def plan(server: EngineServer, job: Job) -> dict[str, Any]:
    """``track/plan``: the default regions of a file, and the grid and the form when they
    follow them."""
    regions, grid, form = server.annotator.plan_track(job.args["path"], file=job.file)
    return {
        "path": job.args["path"],
        "regions": [[r.start_s, r.end_s] for r in regions],
        **grid.to_dict(),
        "form": [s.to_dict() for s in form],
    }


def records(server: EngineServer, job: Job) -> dict[str, Any]:
    """``track/annotations``: the records of a file, by its absolute path as given (symlinks
    not followed)."""
    store = server.annotator.store
    path = job.args["path"]
    regions = [] if store is None else store.annotations_for(path)
    return {"path": path, "regions": [r.to_dict() for r in regions]}
