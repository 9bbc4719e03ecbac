"""The Ableton Live remote script, run against a stub of Live's API and a real lite engine."""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from daw_bridge import protocol

ABLETON_DIR = Path(__file__).resolve().parents[2] / "daw_bridge" / "ableton"
SCRIPT_FILES = sorted((ABLETON_DIR / "SonicVerse").glob("*.py"))


@pytest.fixture(scope="module")
def live_script() -> Any:
    sys.path.insert(0, str(ABLETON_DIR))
    try:
        yield importlib.import_module("SonicVerse")
    finally:
        sys.path.remove(str(ABLETON_DIR))


def test_addresses_and_argument_order_match_the_protocol(live_script: Any) -> None:
    used = {a for p in SCRIPT_FILES for a in re.findall(r"/sonicverse/\w+/\w+", p.read_text())}
    assert used and used <= set(protocol.all_messages())
    surface = live_script.sonicverse
    declared = protocol.REQUESTS[surface.ANNOTATE]
    assert tuple(a.name for a in declared.args) == surface.ANNOTATE_ARGS
    assert tuple(a.name for a in protocol.REQUESTS[surface.PING].args) == surface.PING_ARGS


def test_the_script_does_not_need_anything_live_lacks() -> None:
    for p in SCRIPT_FILES:
        imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", p.read_text(), re.M)
        assert set(imports) <= {".", "json", "os", "re", "socket", "struct", "time", ".sonicverse"}
        ast.parse(p.read_text(), str(p), feature_version=(3, 7))


def test_codec_interoperates_with_python_osc(live_script: Any) -> None:
    codec = live_script.osc
    dgram = codec.encode("/sonicverse/region/annotate", ["id", 0, "", "/a é.wav", 1.5, 2.25])
    m = OscMessage(dgram)
    assert m.address == "/sonicverse/region/annotate"
    assert m.params == ["id", 0, "", "/a é.wav", 1.5, 2.25]
    b = OscMessageBuilder(protocol.RESULT)
    for v, t in (
        ("x", "s"),
        (0, "i"),
        (1, "i"),
        ('{"k": "é"}', "s"),
        (2.5, "d"),
        (7, "h"),
        (True, "T"),
        (b"\x01\x02\x03", "b"),
    ):
        b.add_arg(v, t)
    assert codec.decode(b.build().dgram) == (
        protocol.RESULT,
        ["x", 0, 1, '{"k": "é"}', 2.5, 7, True, b"\x01\x02\x03"],
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_codec_rejects_garbage_with_its_own_error_only(data: bytes) -> None:
    sys.path.insert(0, str(ABLETON_DIR))
    try:
        osc = importlib.import_module("SonicVerse.osc")
    finally:
        sys.path.remove(str(ABLETON_DIR))
    with contextlib.suppress(osc.OscError):
        osc.decode(b"/" + data)


# A stub of the Live Object Model: what the script touches, nothing more.


class Track:
    def __init__(self, name: str) -> None:
        self.name = name
        self.mixer_device = object()  # what a Track has and a ClipSlot or TakeLane lacks


class TakeLane:
    """Live 12: an arrangement clip on a take lane has the lane as its canonical_parent."""

    def __init__(self, name: str, track: Track) -> None:
        self.name = name
        self.canonical_parent = track


class ClipSlot:
    def __init__(self, track: Track) -> None:
        self.canonical_parent = track


class Clip:
    def __init__(
        self,
        path: str,
        *,
        name: str,
        start: float,
        end: float,
        warping: bool = False,
        bpm: float = 120.0,
        sr: int = 22050,
        arrangement: bool = False,
        sample_length: int = 0,
    ) -> None:
        self.is_audio_clip = True
        self.file_path = path
        self.name = name
        self.start_marker = start
        self.end_marker = end
        self.warping = warping
        self.sample_rate = sr
        self.color_index = 0
        self.sample_length = sample_length
        self.looping = False
        self.loop_start = start
        self.loop_end = end
        # Live: an arrangement clip's canonical_parent is its Track; a session clip's is its
        # ClipSlot (decompiled Live 11 scripts; AbletonOSC's clip handlers)
        self.is_arrangement_clip = arrangement
        self.canonical_parent = Track("Vocals") if arrangement else ClipSlot(Track("Vocals"))
        self._bpm = bpm

    def beat_to_sample_time(self, beats: float) -> float:
        if not self.warping:
            raise RuntimeError("the clip is not warped")
        return beats * 60.0 / self._bpm * self.sample_rate


class View:
    def __init__(self) -> None:
        self.detail_clip: Clip | None = None
        self.listeners: list[Any] = []

    def add_detail_clip_listener(self, fn: Any) -> None:
        self.listeners.append(fn)

    def remove_detail_clip_listener(self, fn: Any) -> None:
        self.listeners.remove(fn)

    def detail_clip_has_listener(self, fn: Any) -> bool:
        return fn in self.listeners

    def select(self, clip: Clip | None) -> None:
        self.detail_clip = clip
        for fn in list(self.listeners):
            fn()


class Song:
    def __init__(self) -> None:
        self.view = View()


class CInstance:
    def __init__(self) -> None:
        self._song = Song()
        self.messages: list[str] = []
        self.log: list[str] = []

    def song(self) -> Song:
        return self._song

    def show_message(self, text: str) -> None:
        self.messages.append(text)

    def log_message(self, text: str) -> None:
        self.log.append(text)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from engine import presets
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig
    from engine.store import Store

    tmp = tmp_path_factory.mktemp("engine")
    annotator = Annotator(presets.load("lite"), store=Store(tmp / "store.sqlite3"))
    server = EngineServer(annotator, ServerConfig(port=0))
    server.start()
    yield server
    server.stop()
    annotator.close()


def _audio(tmp_path: Path) -> Path:
    sr = 22050
    t = np.arange(4 * sr) / sr
    x = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) * 0.1
    path = tmp_path / "clip.wav"
    sf.write(path, x.astype(np.float32), sr)
    return path


def _tick_until(surface: Any, done: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        surface.update_display()
        time.sleep(0.01)
    assert done()


def test_selecting_a_clip_names_and_colours_it_once(
    live_script: Any, engine: Any, tmp_path: Path
) -> None:
    c = CInstance()
    surface = live_script.sonicverse.SonicVerse(c, settings={"port": engine.address[1]})
    clip = Clip(str(_audio(tmp_path)), name="Verse vox", start=0.5, end=3.5)
    for _ in range(2):
        before = len(c.messages)
        c.song().view.select(clip)
        _tick_until(surface, lambda b=before: len(c.messages) >= b + 2 and not surface._pending)
    assert re.fullmatch(
        r"Verse vox \[SV [A-G][#b]? (major|minor)( · no vocals)?( · \d+ BPM)?\]", clip.name
    ), clip.name
    assert "error" not in " ".join(c.messages)
    stored = engine.annotator.store.annotations_for(clip.file_path)
    assert [(a.start_s, a.end_s, a.name) for a in stored] == [(0.5, 3.5, "Verse vox")]
    surface.disconnect()
    assert not c.song().view.listeners


def test_a_drum_loop_clip_is_named_with_its_tempo(
    live_script: Any, engine: Any, tmp_path: Path
) -> None:
    from tests.synth import drum_loop

    path = tmp_path / "loop.wav"
    sf.write(path, drum_loop(120.0, 8.0, sr=22050), 22050)
    c = CInstance()
    surface = live_script.sonicverse.SonicVerse(c, settings={"port": engine.address[1]})
    clip = Clip(str(path), name="Beat", start=0.0, end=8.0)
    c.song().view.detail_clip = clip
    surface.annotate_selected_clip()
    _tick_until(surface, lambda: not surface._pending)
    assert re.fullmatch(r"Beat \[SV .*\b(11[89]|12[01]) BPM\]", clip.name), clip.name
    surface.disconnect()


def test_warped_clip_markers_are_converted_to_seconds(live_script: Any) -> None:
    clip = Clip("/x.wav", name="", start=2.0, end=6.0, warping=True, bpm=120.0)
    assert live_script.sonicverse.clip_span_s(clip) == (1.0, 3.0)
    clip.warping = False
    clip.start_marker, clip.end_marker = 0.25, 1.75
    assert live_script.sonicverse.clip_span_s(clip) == (0.25, 1.75)


def test_arrangement_and_session_clips_name_their_track(live_script: Any) -> None:
    for arrangement in (False, True):
        clip = Clip("/x.wav", name="", start=0, end=1, arrangement=arrangement)
        assert live_script.sonicverse.track_name(clip) == "Vocals"


def test_a_looped_clip_is_analysed_over_what_it_plays(live_script: Any) -> None:
    # Live plays a looped clip from its start marker into the loop, then loop_start..loop_end
    clip = Clip("/x.wav", name="", start=1.0, end=8.0)
    clip.looping, clip.loop_start, clip.loop_end = True, 0.5, 3.0
    assert live_script.sonicverse.clip_span_s(clip) == (0.5, 3.0)
    clip.loop_start = 1.5  # the start marker before the loop: from the start marker
    assert live_script.sonicverse.clip_span_s(clip) == (1.0, 3.0)
    warped = Clip("/x.wav", name="", start=2.0, end=16.0, warping=True, bpm=120.0)
    warped.looping, warped.loop_start, warped.loop_end = True, 4.0, 8.0  # beats
    assert live_script.sonicverse.clip_span_s(warped) == (1.0, 4.0)


def test_a_take_lane_clip_names_its_track_not_the_lane(live_script: Any) -> None:
    clip = Clip("/x.wav", name="", start=0, end=1, arrangement=True)
    clip.canonical_parent = TakeLane("Take 3", Track("Lead Vox"))
    assert live_script.sonicverse.track_name(clip) == "Lead Vox"


def test_clip_end_is_clamped_to_the_file(live_script: Any) -> None:
    clip = Clip("/x.wav", name="", start=0.5, end=8.0, sample_length=22050 * 4)
    assert live_script.sonicverse.clip_span_s(clip) == (0.5, 4.0)


def test_engine_errors_are_shown_and_unanswered_requests_expire(
    live_script: Any, engine: Any, tmp_path: Path
) -> None:
    c = CInstance()
    surface = live_script.sonicverse.SonicVerse(c, settings={"port": engine.address[1]})
    clip = Clip(str(tmp_path / "gone.wav"), name="Gone", start=0.0, end=1.0)
    c.song().view.detail_clip = clip
    surface.annotate_selected_clip()
    _tick_until(surface, lambda: not surface._pending)
    assert "audio_error" in c.messages[-1] and clip.name == "Gone"
    surface.disconnect()

    now = [0.0]
    c = CInstance()
    dead = live_script.sonicverse.SonicVerse(c, settings={"port": 9}, clock=lambda: now[0])
    c.song().view.detail_clip = clip
    dead.annotate_selected_clip()
    for _ in range(10):
        now[0] += 1.5
        dead.update_display()
    assert not dead._pending and "does not answer" in c.messages[-1]
    dead.disconnect()


def test_create_instance_is_lives_entry_point(live_script: Any) -> None:
    c = CInstance()
    surface = live_script.create_instance(c)
    assert surface._engine == ("127.0.0.1", 9000)
    assert c.song().view.listeners and surface.can_lock_to_devices() is False
    surface.update_display()
    again = live_script.create_instance(CInstance())  # Live reloading the script
    assert again._prefix != surface._prefix, "request ids would repeat after a reload"
    again.disconnect()
    surface.disconnect()


def test_tag_name_and_summary(live_script: Any) -> None:
    sv = live_script.sonicverse
    assert sv.tag_name("Verse [SV C major]", "A minor") == "Verse [SV A minor]"
    assert sv.tag_name("", "A minor") == "[SV A minor]"
    assert sv.tag_name("Verse [SV C major]", None) == "Verse"
    ann = {"silent": False, "key": {"key": "F# minor"}, "vocals": {"label": "female"}}
    assert sv.summary(ann) == "F# minor · female vocals"
    # the tempo, as the REAPER and Ardour labels carry it
    assert sv.summary({**ann, "tempo_bpm": 123.6}) == "F# minor · female vocals · 124 BPM"
    assert sv.summary({**ann, "tempo_bpm": None}) == "F# minor · female vocals"
    assert sv.summary({"silent": True}) == "silence"
    # the gender only when sure of it, as the panel and the exports tell it
    unsure = {"label": "male", "probabilities": [0.05, 0.5, 0.45]}
    sure = {"label": "female", "probabilities": [0.05, 0.05, 0.9]}
    assert sv.summary({**ann, "vocals": unsure}) == "F# minor · vocals"
    assert sv.summary({**ann, "vocals": sure}) == "F# minor · female vocals"


def test_engine_host_is_resolved_once(live_script: Any, monkeypatch: Any) -> None:
    """Live's main thread must not wait on a name lookup at every send."""
    import socket

    lookups: list[str] = []
    real = socket.getaddrinfo

    def counting(host: str, *a: Any, **kw: Any) -> Any:
        lookups.append(host)
        return real(host, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    c = CInstance()
    surface = live_script.sonicverse.SonicVerse(c, settings={"host": "localhost", "port": 9})
    assert surface._engine == ("127.0.0.1", 9)
    for _ in range(3):
        surface._sendto(b"/x\0\0,\0\0\0")
    assert lookups == ["localhost"]
    surface.disconnect()


def test_a_restarted_engine_is_named_and_asked_again(live_script: Any) -> None:
    """The engine restarts while the clip's request waits: the script says so, sends it again
    to the new engine, and the clip gets its name (no wait for the two-minute timeout)."""
    from tests.daw_bridge.test_client import FakeEngine, Instances

    engines = Instances()
    engine = FakeEngine(engines)
    c = CInstance()
    surface = live_script.sonicverse.SonicVerse(c, settings={"port": engine.port})
    try:
        clip = Clip("/a.wav", name="Vox", start=0.0, end=1.0)
        c.song().view.detail_clip = clip
        rid = surface.annotate_selected_clip()
        _tick_until(surface, lambda: surface._pending[rid].accepted and surface._instance)
        engines.instance = "second"  # killed and started again: the request is lost with it
        engines.answer = {"silent": False, "key": {"key": "A minor"}, "caption": "a test"}
        t0 = time.monotonic()
        _tick_until(surface, lambda: not surface._pending, timeout_s=5.0)
        assert time.monotonic() - t0 < 3.0
        assert any("engine restarted; asking again" in m for m in c.messages)
        assert clip.name == "Vox [SV A minor]"
        sent = [a for a, p in engine.received if a == protocol.ANNOTATE]
        assert len(sent) == 2  # once to each engine
    finally:
        surface.disconnect()
        engine.close()


def test_a_lost_final_reply_is_asked_for_again(live_script: Any) -> None:
    """The engine accepts the clip's request and its final reply is lost: after a quiet spell
    the script sends the request again under its id and the engine's replay names the clip."""
    from tests.daw_bridge.test_client import FakeEngine, _reply

    body = json.dumps({"silent": False, "key": {"key": "A minor"}, "caption": "a test"})

    def behave(e: Any, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            pong = json.dumps({"pong": True, "instance": "one"})
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=pong))
        elif sum(1 for a, q in e.received if a == address and q[0] == p[0]) == 1:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))  # the result: lost
        else:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=body))

    engine = FakeEngine(behave)
    now = [0.0]
    c = CInstance()
    surface = live_script.sonicverse.SonicVerse(
        c, settings={"port": engine.port}, clock=lambda: now[0]
    )
    try:
        clip = Clip("/a.wav", name="Vox", start=0.0, end=1.0)
        c.song().view.detail_clip = clip
        rid = surface.annotate_selected_clip()
        _tick_until(surface, lambda: surface._pending[rid].accepted)
        for _ in range(200):  # a second of the script's clock per tick, far under its timeout
            if not surface._pending:
                break
            now[0] += 1.0
            surface.update_display()
            time.sleep(0.02)
        assert clip.name == "Vox [SV A minor]"
        assert now[0] <= 10.0
        sent = [a for a, p in engine.received if a == protocol.ANNOTATE]
        assert len(sent) == 2
    finally:
        surface.disconnect()
        engine.close()


@pytest.mark.parametrize("forever", [False, True])
def test_the_wait_behind_other_requests_does_not_count_against_the_timeout(
    live_script: Any, forever: bool
) -> None:
    """The engine says other requests are ahead of the clip's for 200 s of the script's clock
    (its timeout is 120 s), then answers: the clip is named. An engine that says so forever
    (its worker hung) still times the request out, after the timeout and three times it."""
    from tests.daw_bridge.test_client import FakeEngine, _reply

    mod = live_script.sonicverse
    body = json.dumps({"silent": False, "key": {"key": "A minor"}, "caption": "a test"})
    now = [0.0]

    def behave(e: Any, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            pong = json.dumps({"pong": True, "instance": "one"})
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=pong))
        elif forever or now[0] < 200.0:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=2))
        else:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=body))

    engine = FakeEngine(behave)
    c = CInstance()
    surface = mod.SonicVerse(c, settings={"port": engine.port}, clock=lambda: now[0])
    try:
        clip = Clip("/a.wav", name="Vox", start=0.0, end=1.0)
        c.song().view.detail_clip = clip
        rid = surface.annotate_selected_clip()
        _tick_until(surface, lambda: surface._pending[rid].accepted)
        for _ in range(200):  # the re-ask interval of the script's clock per tick
            if not surface._pending:
                break
            now[0] += mod.REASK_S
            surface.update_display()
            # the re-ask and the probe answered before the clock moves on
            _tick_until(
                surface,
                lambda: (
                    rid not in surface._pending
                    or (surface._pending[rid].heard_at >= now[0] and surface._probe is None)
                ),
            )
        if forever:
            assert "no answer in time" in c.messages[-1] and clip.name == "Vox"
            limit = (1 + mod.MAX_QUEUE_CREDIT) * mod.TIMEOUT_S
            assert limit <= now[0] <= limit + 2 * mod.REASK_S
        else:
            assert clip.name == "Vox [SV A minor]" and 200.0 <= now[0] <= 215.0
    finally:
        surface.disconnect()
        engine.close()
