"""The wire's vocabulary: key names (all enharmonic spellings) and the clock format."""

from __future__ import annotations

import pytest

from daw_bridge.clock import clock
from daw_bridge.keys import ENHARMONIC, KEYS, PITCH_CLASSES, key_index, key_tonic_mode, parse_key


def test_every_enharmonic_spelling_reads_as_its_wire_spelling():
    assert len(ENHARMONIC) == 9
    for spelling, wire in ENHARMONIC.items():
        assert parse_key(f"{spelling} minor") == (PITCH_CLASSES.index(wire), "minor")
        assert KEYS[key_index(f"{spelling} major")] == f"{wire} major"


def test_key_names_round_trip_and_jams_style():
    assert [key_index(k) for k in KEYS] == list(range(24))
    assert key_tonic_mode(key_index("a minor")) == (9, "minor")
    assert parse_key("C:major") == (0, "major")
    assert parse_key("H dur") is None and parse_key("nonsense") is None
    with pytest.raises(ValueError, match="unknown tonic 'H'"):
        key_index("H major")
    with pytest.raises(ValueError, match="major\\|minor"):
        key_index("C lydian")


def test_clock():
    assert clock(0) == "0:00.0"
    assert clock(75.25) == "1:15.2"
    assert clock(-3) == "0:00.0"
