"""The declared live-capture line format: what ``sonicverse listen --jsonl`` writes."""

from __future__ import annotations

import json

import pytest

from daw_bridge.live import (
    LIVE_VERSION,
    LiveEvent,
    LiveFormatError,
    WindowResult,
    decode,
    encode,
)


def test_window_and_event_lines_round_trip():
    result = WindowResult(3, 4.0, 14.0, 812.5, 41.2, {"key": None}, None)
    assert decode(encode(result)) == result
    assert decode(encode(result).encode()) == result  # bytes as read from a pipe
    event = LiveEvent("finished", "song.wav: end of file")
    assert json.loads(encode(event)) == {
        "v": LIVE_VERSION,
        "event": "finished",
        "message": "song.wav: end of file",
    }
    assert decode(encode(event)) == event


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("not json", "not a JSON line"),
        ("[1]", "expected a JSON object"),
        ('{"event": "finished", "message": ""}', "v=None"),
        ('{"v": 2, "event": "finished", "message": ""}', "v=2"),
        ('{"v": 1, "event": "exploded", "message": ""}', "event='exploded'"),
        ('{"v": 1, "index": 0, "start_s": 0, "end_s": 1, "t_end": 1}', "analysis_ms=None"),
        (
            '{"v": 1, "index": 0, "start_s": 0, "end_s": 1, "t_end": 1, "analysis_ms": 1,'
            ' "annotation": 3}',
            "annotation=3",
        ),
    ],
)
def test_decode_names_what_is_wrong(line, match):
    with pytest.raises(LiveFormatError, match=match):
        decode(line)


def test_the_engine_writes_and_the_panel_reads_the_declared_format():
    """Both sides go through daw_bridge.live (no private JSON either side)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    producer = (root / "engine" / "listen.py").read_text()
    consumer = (root / "ui" / "live.py").read_text()
    assert "live_format.encode(" in producer and "json.dumps" not in producer
    assert "live_format.decode(" in consumer and "json.loads" not in consumer
