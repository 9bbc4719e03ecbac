"""REAPER's "annotate form": one project region per section, named and coloured, one undo step,
replacing only what an earlier run wrote."""

from __future__ import annotations

from pathlib import Path

from tests.daw_bridge.test_reaper_scripts import _fake_send, _lua_str, _tones, needs_lua, run_scene

FORM_SCRIPT = "sonicverse_annotate_form.lua"


def _result() -> dict:
    """A narrate result with a form: intro, verse, chorus, verse, chorus."""
    form = [
        (0.0, 2.0, "A", "intro"),
        (2.0, 4.0, "B", "verse"),
        (4.0, 6.0, "C", "chorus"),
        (6.0, 7.0, "B", "verse"),
        (7.0, 8.0, "C", "chorus"),
    ]
    region = {"start_s": 0.0, "end_s": 8.0, "silent": False, "key": {"key": "A minor"}}
    return {
        "tempo_bpm": 128.0,
        "meter": "4/4",
        "beats": [],
        "tempi": [{"start_s": 0.0, "end_s": 8.0, "bpm": 128.0}],
        "form": [
            {"start_s": a, "end_s": b, "label": lab, "function": f, "confidence": 1.0}
            for a, b, lab, f in form
        ],
        "regions": [region],
        "narrative": {"text": "", "sections": []},
    }


def _regions(lines: list[str]) -> list[tuple[float, float, str]]:
    out = []
    for x in lines:
        if x.startswith("REGION"):
            _, a, b, name = x.split("\t")
            out.append((float(a), float(b), name))
    return out


@needs_lua
def test_annotate_form_writes_a_named_region_per_section_once(tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [220.0] * 8)
    command = _fake_send(tmp_path, _result())
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 8.0,"
        "regions = { { pos = 1.0, rgnend = 3.0, name = 'my take' } },"  # the user's own
    )
    once = run_scene(tmp_path, 0, scene, FORM_SCRIPT, command=command, undo=True)
    assert _regions(once) == [
        (0.0, 2.0, "Intro 1 · A minor · 128 BPM"),
        (1.0, 3.0, "my take"),
        (2.0, 4.0, "Verse 1 · A minor · 128 BPM"),
        (4.0, 6.0, "Chorus 1 · A minor · 128 BPM"),
        (6.0, 7.0, "Verse 2 · A minor · 128 BPM"),
        (7.0, 8.0, "Chorus 2 · A minor · 128 BPM"),
    ], once
    assert [x for x in once if x.startswith("UNDO")] == ["UNDO\tSonicVerse: annotate form"]
    twice = run_scene(tmp_path, 0, scene, FORM_SCRIPT, command=command, times=2)
    assert _regions(twice) == _regions(once)  # the second run replaced what the first wrote


@needs_lua
def test_annotate_form_without_a_form_says_so_and_writes_nothing(tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [220.0] * 2)
    command = _fake_send(tmp_path, {**_result(), "form": []})
    scene = f"mix = {_lua_str(str(mix))}, length = 2.0,"
    lines = run_scene(tmp_path, 0, scene, FORM_SCRIPT, command=command, messages=True)
    assert not _regions(lines)
    assert any("no form" in x for x in lines if x.startswith("MSG")), lines
