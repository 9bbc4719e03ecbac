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


def test_the_gender_is_said_only_when_clear_as_the_narrative_says_it() -> None:
    from daw_bridge.export import region_label
    from daw_bridge.keys import GENDER_CONFIDENCE, vocals_word
    from engine.track import GENDER_CONFIDENCE as ENGINE_RULE

    assert GENDER_CONFIDENCE == ENGINE_RULE  # one rule for the engine's text and the panel's
    assert vocals_word("female", [0.1, 0.05, 0.85]) == "female"
    assert vocals_word("female", [0.1, 0.4, 0.5]) == "vocals"  # 0.5 / 0.9 of the voice: unsure
    assert vocals_word("none", [0.9, 0.05, 0.05]) == "none"
    region = {"key": {"key": "A minor"}, "tempo_bpm": 120.0}
    unsure = {**region, "vocals": {"label": "male", "probabilities": [0.2, 0.45, 0.35]}}
    sure = {**region, "vocals": {"label": "male", "probabilities": [0.2, 0.7, 0.1]}}
    assert region_label(unsure) == "A minor | vocals | 120 BPM"
    assert region_label(sure) == "A minor | male vocals | 120 BPM"
