"""``/sonicverse/region/*``: one region of a file (run by the worker that owns the models)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from engine.types import Region

if TYPE_CHECKING:
    from engine.server import EngineServer, Job

log = logging.getLogger(__name__)


def annotate(server: EngineServer, job: Job) -> dict[str, Any]:
    """``region/annotate``: key, vocals, tags, tempo, loudness and caption of one region."""
    a = job.args
    region = Region(a["start_s"], a["end_s"], a["name"])
    result = server.annotator.annotate(
        a["path"],
        [region],
        lyrics=a["lyrics"],
        narrate=False,
        progress=server.progress(job),
        cancelled=job.cancel.is_set,
        file=job.file,
        channels=a["channels"],
        channel_files=job.channel_files,
        in_track=bool(a["in_track"]),
    )
    log.debug(
        "annotated %s (+%d channel files) [%.2f, %.2f) (track %r, region %r)",
        a["path"],
        len(a["channels"]),
        region.start_s,
        region.end_s,
        a["track"],
        a["name"],
    )
    out: dict[str, Any] = result.regions[0].to_dict()
    server.remember(job, out)
    return out
