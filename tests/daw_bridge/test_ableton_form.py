"""Live's locators from the track's form: names, positions, the one-step-a-tick writer, and a
real run against a lite engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soundfile as sf

from daw_bridge import export, protocol
from tests.daw_bridge import test_ableton_script as base
from tests.daw_bridge.test_ableton_script import CInstance, Clip, _tick_until

live_script = base.live_script  # the script's package (a fixture)
engine = base.engine  # a lite engine on a free port (a fixture)


class CuePoint:
    def __init__(self, time: float, name: str) -> None:
        self._time = time
        self.name = name

    @property
    def time(self) -> float:  # read only in Live
        return self._time


class ArrangementSong:
    """Live's Song as far as locators go: a move of the position shows one read later (Live
    applies it on a later tick), and ``set_or_delete_cue`` toggles a locator there."""

    def __init__(self, cues: list[CuePoint] | None = None, tempo: float = 120.0) -> None:
        self.cue_points = list(cues or [])
        self.tempo = tempo
        self._time = 0.0
        self._target: float | None = None
        self.undo: list[str] = []

    @property
    def current_song_time(self) -> float:
        now = self._time
        if self._target is not None:
            self._time, self._target = self._target, None
        return now

    @current_song_time.setter
    def current_song_time(self, value: float) -> None:
        self._target = float(value)

    def set_or_delete_cue(self) -> None:
        here = [c for c in self.cue_points if abs(c.time - self._time) < 1e-9]
        if here:
            self.cue_points.remove(here[0])
        else:
            self.cue_points.append(CuePoint(self._time, ""))

    def begin_undo_step(self) -> None:
        self.undo.append("begin")

    def end_undo_step(self) -> None:
        self.undo.append("end")


RESULT = {
    "tempo_bpm": 120.0,
    "tempi": [{"start_s": 0.0, "end_s": 40.0, "bpm": 120.0}],
    "regions": [{"start_s": 0.0, "end_s": 40.0, "key": {"key": "A minor"}, "silent": False}],
    "form": [
        {"start_s": 0.0, "end_s": 10.0, "label": "A", "function": "verse"},
        {"start_s": 10.0, "end_s": 20.0, "label": "B", "function": "chorus"},
        {"start_s": 20.0, "end_s": 30.0, "label": "A", "function": "verse"},
        {"start_s": 30.0, "end_s": 40.0, "label": "C", "function": None},
    ],
}


def test_the_narrate_request_matches_the_protocol(live_script: Any) -> None:
    surface = live_script.sonicverse
    declared = protocol.REQUESTS[surface.NARRATE]
    assert tuple(a.name for a in declared.args) == surface.NARRATE_ARGS


def test_names_match_the_other_daws(live_script: Any) -> None:
    names = [n for _, _, n in live_script.form.section_names(RESULT)]
    assert names == [t for _, _, t in export.section_titles(RESULT)]
    assert names[1] == "Chorus 1 · A minor · 120 BPM"


def test_cues_sit_where_the_sections_play_in_the_arrangement(live_script: Any) -> None:
    clip = Clip("/x.wav", name="mix", start=5.0, end=35.0, arrangement=True)
    clip.start_time = 16.0  # the clip starts at beat 16 and plays the file from 5 s
    cues = live_script.form.form_cues(RESULT, clip, (5.0, 35.0), 120.0)
    # sections at 0 (clipped to 5 s), 10, 20, 30 s of the file: 2 beats a second at 120 BPM
    assert [b for b, _ in cues] == [16.0, 26.0, 46.0, 66.0]
    assert cues[0][1] == "SV: Verse 1 · A minor · 120 BPM"


def test_the_writer_replaces_its_own_locators_and_keeps_the_users(live_script: Any) -> None:
    song = ArrangementSong(
        [CuePoint(4.0, "SV: Old 1"), CuePoint(8.0, "Drop here"), CuePoint(12.0, "x")]
    )
    song._time = 3.0
    cues = [(0.0, "SV: Verse 1"), (8.0, "SV: Chorus 1"), (20.0, "SV: Verse 2")]
    writer = live_script.form.CueWriter(song, cues, print)
    for _ in range(100):
        if writer.tick():
            break
    assert writer.done
    by_time = sorted((c.time, c.name) for c in song.cue_points)
    assert by_time == [(0.0, "SV: Verse 1"), (8.0, "Drop here"), (12.0, "x"), (20.0, "SV: Verse 2")]
    assert song._target == 3.0  # the position is sent back where it was
    assert song.undo == ["begin", "end"]  # one undo step


def test_selecting_an_arrangement_clip_writes_its_form(
    live_script: Any,
    engine: Any,
    tmp_path: Path,
) -> None:
    from tests.engine.test_form import SR, abab_song

    path = tmp_path / "abab.wav"
    sf.write(path, abab_song(), SR)
    c = CInstance()
    song = ArrangementSong(tempo=120.0)
    song.view = c.song().view
    c._song = song  # type: ignore[assignment]
    surface = live_script.sonicverse.SonicVerse(
        c, settings={"port": engine.address[1], "form": True}
    )
    clip = Clip(str(path), name="Song", start=0.0, end=64.0, arrangement=True, sr=SR)
    clip.start_time = 32.0
    song.view.select(clip)
    _tick_until(surface, lambda: len(song.cue_points) == 4 and surface._cues is None, 60.0)
    cues = sorted((c.time, c.name) for c in song.cue_points)
    assert [n.split(" · ")[0] for _, n in cues] == [
        "SV: Verse 1",
        "SV: Chorus 1",
        "SV: Verse 2",
        "SV: Chorus 2",
    ], cues
    for (beat, _), true_s in zip(cues, (0.0, 16.0, 32.0, 48.0), strict=True):
        assert abs(beat - (32.0 + 2 * true_s)) < 4.0  # within a bar (4 beats)
    surface.disconnect()
