"""Loopback tests of the resident engine: the real server on 127.0.0.1, the lite backend."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from daw_bridge import protocol
from daw_bridge.client import EngineBusy, EngineClient, ReplyError
from engine import presets
from engine.audio import load as load_audio
from engine.errors import InvalidRequest
from engine.pipeline import Annotator, attach_chords, carry_chords, region_chords, resolve_track
from engine.server import EngineServer, ServerConfig, parse_regions
from engine.store import Store
from engine.types import RegionAnnotation

SR = 22050
ROOT = Path(__file__).resolve().parents[2]


def tones(path: Path, freqs: list[float], *, seconds_each: float = 2.0) -> Path:
    """A file of consecutive decaying tones: every region has different samples."""
    t = np.arange(int(SR * seconds_each)) / SR
    x = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) * np.exp(-3 * t) for f in freqs])
    sf.write(path, x.astype(np.float32), SR)
    return path


class RawOsc:
    """A bare UDP socket speaking OSC through python-osc, for messages the client refuses."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)

    def send(self, address: str, *args: Any) -> None:
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        self.sock.sendto(b.build().dgram, self.address)

    def send_raw(self, dgram: bytes) -> None:
        self.sock.sendto(dgram, self.address)

    def replies(self, *, until_final: int = 1, timeout_s: float = 10.0) -> list[OscMessage]:
        """Receive until ``until_final`` final replies arrived (or the timeout)."""
        out: list[OscMessage] = []
        deadline = time.monotonic() + timeout_s
        finals = 0
        while finals < until_final and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            for m in OscPacket(data).messages:
                out.append(m.message)
                if m.message.address in protocol.FINAL_REPLIES:
                    p = m.message.params
                    last_part = m.message.address != protocol.RESULT or p[1] == p[2] - 1
                    finals += last_part
        return out

    def final(self, **kw: Any) -> OscMessage:
        finals = [m for m in self.replies(**kw) if m.address in protocol.FINAL_REPLIES]
        assert finals, "no final reply"
        return finals[-1]

    def close(self) -> None:
        self.sock.close()


class GatedLite:
    """The lite backend, but each ``analyze`` call waits for a gate (to hold a job running)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.fingerprint = inner.fingerprint + ":gated"
        self.max_batch = 1
        self.gate = threading.Event()
        self.entered = threading.Event()

    def analyze(self, segments: Any, **kw: Any) -> Any:
        self.entered.set()
        assert self.gate.wait(10.0)
        return self.inner.analyze(segments, **kw)

    def narrate(self, *a: Any, **kw: Any) -> Any:
        return self.inner.narrate(*a, **kw)

    def close(self) -> None:
        self.gate.set()


@pytest.fixture
def audio(tmp_path: Path) -> Path:
    return tones(tmp_path / "bounce.wav", [220.0, 330.0, 440.0, 550.0, 660.0])


def serve(annotator: Any, **config: Any) -> EngineServer:
    server = EngineServer(annotator, ServerConfig(port=0, **config))
    server.start()
    return server


@pytest.fixture
def engine(annotator: Any) -> Any:
    server = serve(annotator)
    with EngineClient(*server.address, timeout_s=20.0) as client:
        yield server, client
    server.stop()


def test_ping_and_status(engine: Any) -> None:
    server, client = engine
    assert client.ping() == {
        "pong": True,
        "protocol_version": protocol.PROTOCOL_VERSION,
        "preset": "lite",
        "backend": "lite",
        "instance": server.instance,
    }
    status = client.status()
    assert status["queued"] == 0 and status["running"] is None and status["capacity"] == 32
    assert status["instance"] == server.instance and len(server.instance) == 16


def test_annotate_region_then_cache_hit_for_a_rebounced_copy(engine: Any, audio: Path) -> None:
    server, client = engine
    progress: list[tuple[str, int, int]] = []
    ann = client.annotate_region(
        str(audio),
        2.0,
        4.0,
        track="Keys",
        name="B section",
        on_progress=lambda *p: progress.append(p),
    )
    assert (ann["start_s"], ann["end_s"], ann["name"], ann["backend"]) == (
        2.0,
        4.0,
        "B section",
        "lite",
    )
    assert ann["key"]["key"] and ann["caption"]
    assert ("analyze", 1, 1) in progress
    stored = server.annotator.store.count()
    rebounce = audio.with_name("rebounce.wav")
    shutil.copy(audio, rebounce)
    t0 = time.perf_counter()
    again = client.annotate_region(str(rebounce), 2.0, 4.0, name="B section")
    assert time.perf_counter() - t0 < 1.0
    assert again == ann
    assert server.annotator.store.count() == stored


def test_unchanged_file_is_answered_from_memory_and_a_changed_one_is_not(
    engine: Any, raw: RawOsc, tmp_path: Path
) -> None:
    path = tones(tmp_path / "take.wav", [220.0, 330.0])
    raw.send(protocol.ANNOTATE, "m1", 0, "", str(path), 0.0, 2.0)
    first = [m for m in raw.replies() if m.address != protocol.PROGRESS]
    assert [m.address for m in first] == [protocol.ACCEPTED, protocol.RESULT]
    raw.send(protocol.ANNOTATE, "m2", 0, "", str(path), 0.0, 2.0)
    second = raw.replies()
    assert [m.address for m in second] == [protocol.RESULT]  # not queued: no "accepted"
    assert second[0].params[1:] == first[1].params[1:]
    tones(path, [277.18, 415.3])  # re-bounced with different audio: same path, new samples
    raw.send(protocol.ANNOTATE, "m3", 0, "", str(path), 0.0, 2.0)
    third = [m for m in raw.replies() if m.address != protocol.PROGRESS]
    assert [m.address for m in third] == [protocol.ACCEPTED, protocol.RESULT]
    assert json.loads(third[1].params[3]) != json.loads(first[1].params[3])


def test_narrate_whole_file_and_given_regions(engine: Any, audio: Path) -> None:
    _, client = engine
    whole = client.narrate(str(audio))
    assert whole["source"] == str(audio) and len(whole["regions"]) == 1
    assert whole["narrative"]["text"]
    spans = [(0.0, 4.0, "intro"), (4.0, 8.0, "verse"), (8.0, 10.0, "outro")]
    result = client.narrate(str(audio), track="Mix", regions=spans)
    assert [(r["start_s"], r["end_s"], r["name"]) for r in result["regions"]] == spans
    assert result["narrative"]["sections"]
    stored = client.annotations(str(audio))
    assert {(r["start_s"], r["end_s"]) for r in stored} >= {(0.0, 4.0), (4.0, 8.0), (8.0, 10.0)}


def test_long_result_arrives_in_datagrams_under_the_limit(engine: Any, tmp_path: Path) -> None:
    server, client = engine
    path = tones(tmp_path / "long.wav", [200.0 + 15 * i for i in range(6)], seconds_each=0.5)
    spans = [[i * 0.25, i * 0.25 + 0.25, f"piece {i} ünïcode " * 4] for i in range(12)]
    raw = RawOsc(server.address)
    raw.send(protocol.NARRATE, "big", 0, "", str(path), "Mix", json.dumps(spans))
    messages = raw.replies(until_final=1, timeout_s=30.0)
    parts = [m for m in messages if m.address == protocol.RESULT]
    assert len(parts) > 1
    assert all(len(m.dgram) <= protocol.MAX_DATAGRAM_BYTES for m in messages)
    text = "".join(m.params[3] for m in sorted(parts, key=lambda m: m.params[1]))
    assert len(json.loads(text)["regions"]) == 12
    assert len(client.narrate(str(path), regions=[tuple(s) for s in spans])["regions"]) == 12
    raw.close()


def test_cancel_queued_and_running(lite: Any, tmp_path: Path, audio: Path) -> None:
    plain = Annotator(lite, store=Store(tmp_path / "s.sqlite3"))
    gated = GatedLite(plain.backend)
    annotator = Annotator(lite, store=plain.store, backend=gated)
    server = serve(annotator)
    try:
        with EngineClient(*server.address, timeout_s=20.0) as client:
            spans = "[[0,2],[2,4]]"
            running = client.submit(protocol.NARRATE, {"path": str(audio), "regions": spans})
            assert gated.entered.wait(10.0)
            queued = client.submit(
                protocol.ANNOTATE, {"path": str(audio), "start_s": 4, "end_s": 6}
            )
            time.sleep(0.2)
            assert client.cancel(queued.id) == {
                "target": queued.id,
                "cancelled": True,
                "state": "queued",
            }
            assert client.cancel(running.id)["state"] == "running"
            assert client.cancel("nobody")["state"] == "unknown"
            gated.gate.set()
            for pending in (running, queued):
                with pytest.raises(ReplyError) as err:
                    pending.result()
                assert err.value.code == "cancelled"
            assert client.annotate_region(str(audio), 4.0, 6.0)["end_s"] == 6.0
    finally:
        server.stop()
        annotator.close()


def test_full_queue_answers_busy(lite: Any, tmp_path: Path, audio: Path) -> None:
    plain = Annotator(lite, store=Store(tmp_path / "s.sqlite3"))
    gated = GatedLite(plain.backend)
    annotator = Annotator(lite, store=plain.store, backend=gated)
    server = serve(annotator, queue_size=1)
    try:
        with EngineClient(*server.address, timeout_s=20.0) as client:
            args = {"path": str(audio), "start_s": 0, "end_s": 2}
            first = client.submit(protocol.ANNOTATE, args)
            assert gated.entered.wait(10.0)
            second = client.submit(protocol.ANNOTATE, {**args, "end_s": 3})
            time.sleep(0.2)
            with pytest.raises(EngineBusy) as busy:
                client.request(protocol.ANNOTATE, {**args, "end_s": 4})
            assert (busy.value.queued, busy.value.capacity) == (1, 1)
            gated.gate.set()
            assert first.result()["end_s"] == 2.0 and second.result()["end_s"] == 3.0
    finally:
        server.stop()
        annotator.close()


@pytest.fixture
def raw(engine: Any) -> Any:
    r = RawOsc(engine[0].address)
    yield r
    r.close()


def _error_of(raw: RawOsc, address: str, *args: Any) -> tuple[str, str, str]:
    raw.send(address, *args)
    reply = raw.final()
    assert reply.address == protocol.ERROR, reply.params
    return reply.params[0], reply.params[1], reply.params[2]


def test_every_bad_request_gets_an_error_and_the_engine_keeps_serving(
    engine: Any, raw: RawOsc, audio: Path, tmp_path: Path
) -> None:
    _, client = engine
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(os.urandom(2048))
    a = protocol.ANNOTATE
    cases = [
        ((a, "r1", 0, "", str(tmp_path / "missing.wav"), 0.0, 1.0), "audio_error", "no such file"),
        ((a, "r2", 0, "", str(text), 0.0, 1.0), "audio_error", "unsupported file type"),
        ((a, "r3", 0, "", str(empty), 0.0, 1.0), "audio_error", "empty"),
        ((a, "r4", 0, "", str(junk), 0.0, 1.0), "audio_error", "unreadable"),
        ((a, "r5", 0, "", str(audio), 5.0, 60.0), "audio_error", "outside the file"),
        ((a, "r6", 0, "", str(audio), 3.0, 1.0), "invalid_request", "start_s < end_s"),
        ((a, "r7", 0, "", "relative.wav", 0.0, 1.0), "audio_error", "absolute path"),
        ((a, "r11", 70000, "", str(audio), 0.0, 1.0), "bad_arguments", "reply_port=70000"),
        (
            (protocol.NARRATE, "r14", 0, "", str(audio), "", "[[1, 0]]"),
            "invalid_request",
            "regions[0]",
        ),
        ((protocol.NARRATE, "r15", 0, "", str(audio), "", "{"), "invalid_request", "not JSON"),
        ((a, "r16", 0, "", str(audio), 0.0, 0.1), "invalid_request", "minimum"),
        (
            (a, "r17", 0, "", str(audio), 0.0, 1.0, "", "", "", "", 2),
            "invalid_request",
            "in_track=2",
        ),
        ((a, "x" * 200, 0, "", str(audio), 0.0, 1.0), "bad_arguments", "characters"),
    ]
    for (address, *args), code, needle in cases:
        rid, got_code, message = _error_of(raw, address, *args)
        assert (got_code, rid) == (code, args[0] if len(args[0]) <= 128 else ""), message
        assert needle in message, message
    # Not readable as a request, so not authenticated: an error reply only if it fits in the
    # datagram's size (its message cut to fit), never larger.
    pad = "p" * 40
    unauthenticated = [
        ((a, "r8", 0, pad, str(audio), "zero", 1.0), "bad_arguments"),
        ((a, "r9", 0, pad, str(audio)), "bad_arguments"),
        ((a, "r10", "x", pad, str(audio), 0.0, 1.0), "bad_arguments"),
        (("/sonicverse/region/explode", "r12", 0, pad), "unknown_address"),
        (("/sonicverse/region/annotate/", "r13", pad), "unknown_address"),
    ]
    for (address, *args), code in unauthenticated:
        b = OscMessageBuilder(address)
        for v in args:
            b.add_arg(v)
        sent = b.build().dgram
        raw.send_raw(sent)
        reply = next(m for m in raw.replies() if m.address == protocol.ERROR)
        assert len(reply.dgram) <= len(sent)
        assert reply.params[:2] == [args[0], code]
    raw.send(protocol.PING)  # no id at all, 24 bytes: no room for an error reply
    assert raw.replies(timeout_s=0.5) == []
    raw.send_raw(b"\x00\x01 not osc at all")
    assert client.annotate_region(str(audio), 0.0, 2.0)["end_s"] == 2.0


def test_a_region_kept_as_one_file_a_channel_is_analysed_from_every_file(
    engine: Any, raw: RawOsc, tmp_path: Path
) -> None:
    # a stereo Ardour region: left channel silent, right channel music
    _, client = engine
    music = np.concatenate([0.3 * np.sin(2 * np.pi * f * np.arange(SR) / SR) for f in (220, 330)])
    left, right = tmp_path / "Keys%L.wav", tmp_path / "Keys%R.wav"
    sf.write(left, np.zeros_like(music, dtype=np.float32), SR)
    sf.write(right, music.astype(np.float32), SR)
    assert client.annotate_region(str(left), 0.0, 2.0)["silent"] is True
    both = client.annotate_region(str(left), 0.0, 2.0, channels=[str(right)])
    assert both["silent"] is False and both["peak_dbfs"] > -20
    # the same request again is answered from memory; another channel file is not
    raw.send(protocol.ANNOTATE, "c1", 0, "", str(left), 0.0, 2.0, "", "", "", f'["{right}"]')
    assert [m.address for m in raw.replies()] == [protocol.RESULT]
    raw.send(protocol.ANNOTATE, "c2", 0, "", str(left), 0.0, 2.0, "", "", "", f'["{left}"]')
    assert json.loads(raw.final().params[3])["silent"] is True


def test_the_plan_of_a_file_is_the_presets(engine: Any, tmp_path: Path) -> None:
    _, client = engine
    path = tones(tmp_path / "long.wav", [220.0] * 23, seconds_each=1.0)  # 10 + 13 s
    plan = client.request(protocol.PLAN, {"path": str(path)})
    assert plan["regions"] == [[0.0, 10.0], [10.0, 23.0]]
    assert plan["beats"] == [] and plan["path"] == str(path)


def test_a_track_kept_as_one_file_a_channel_is_narrated_from_every_file(
    engine: Any, tmp_path: Path
) -> None:
    # a stereo Ardour region for the tempo action: left silent, right a drum loop
    from tests.synth import drum_loop

    _, client = engine
    loop = drum_loop(120.0, 12.0, sr=SR)
    left, right = tmp_path / "Drums%L.wav", tmp_path / "Drums%R.wav"
    sf.write(left, np.zeros_like(loop), SR)
    sf.write(right, loop, SR)
    alone = client.request(protocol.NARRATE, {"path": str(left)})
    assert alone["beats"] == [] and alone["tempo_bpm"] is None
    both = client.request(protocol.NARRATE, {"path": str(left), "channels": f'["{right}"]'})
    assert both["tempo_bpm"] == pytest.approx(120.0, rel=0.03) and len(both["beats"]) > 16


def test_channel_files_are_checked_as_path_is_and_must_match_it(
    engine: Any, raw: RawOsc, tmp_path: Path
) -> None:
    _, client = engine
    left = tones(tmp_path / "L.wav", [220.0, 330.0])
    y = sf.read(left, dtype="float32")[0]
    rate = tmp_path / "R44.wav"
    sf.write(rate, y, 44100)
    short = tmp_path / "Rshort.wav"
    sf.write(short, y[:-SR], SR)
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    a = (protocol.ANNOTATE, 0, "", str(left), 0.0, 1.0, "", "", "")
    cases = [
        (f'["{tmp_path / "missing.wav"}"]', "audio_error", "missing.wav: no such file"),
        (f'["{text}"]', "audio_error", "unsupported file type"),
        ('["relative.wav"]', "audio_error", "absolute path"),
        ("[1]", "invalid_request", "expected a JSON array of file paths"),
        ("{", "invalid_request", "not JSON"),
        (json.dumps([str(left)] * 32), "invalid_request", "expected at most 31"),
        (f'["{rate}"]', "audio_error", "R44.wav: sample rate 44100 Hz differs from"),
        (f'["{short}"]', "audio_error", "Rshort.wav: length 66150 frames (3.000 s) differs from"),
    ]
    for i, (channels, code, needle) in enumerate(cases):
        rid, got_code, message = _error_of(raw, a[0], f"ch{i}", *a[1:], channels)
        assert (rid, got_code) == (f"ch{i}", code), message
        assert needle in message, message
    assert client.annotate_region(str(left), 0.0, 2.0, channels=[str(left)])["end_s"] == 2.0


def test_token_roots_and_reply_port(annotator: Any, audio: Path, tmp_path: Path) -> None:
    inside = tmp_path / "bounces"
    inside.mkdir()
    audio = Path(shutil.copy(audio, inside / "in.wav"))
    outside = tones(tmp_path / "outside.wav", [300.0])
    server = serve(annotator, token="s3cret", roots=(inside,))
    raw = RawOsc(server.address)
    listener = RawOsc(server.address)
    try:
        raw.send(protocol.PING, "t0", 0, "")  # 44 bytes: an error reply would be larger
        assert raw.replies(timeout_s=0.5) == []
        rid, code, _ = _error_of(raw, protocol.PING, "t1", 0, "wrong" * 8)
        assert (rid, code) == ("t1", "unauthorized")
        rid, code, msg = _error_of(
            raw, protocol.ANNOTATE, "t2", 0, "s3cret", str(outside), 0.0, 1.0
        )
        assert code == "forbidden_path" and "outside the engine's roots" in msg
        link = audio.parent / "link.wav"
        link.symlink_to(outside)
        assert _error_of(raw, protocol.ANNOTATE, "t3", 0, "s3cret", str(link), 0.0, 1.0)[1] == (
            "forbidden_path"
        )
        port = listener.sock.getsockname()[1]
        raw.send(protocol.PING, "t4", port, "s3cret")
        assert listener.final().params[0] == "t4"
        rid, code, msg = _error_of(
            raw,
            protocol.ANNOTATE,
            "t5",
            0,
            "s3cret",
            str(audio),
            0.0,
            1.0,
            "",
            "",
            "",
            json.dumps([str(outside)]),
        )
        assert code == "forbidden_path" and "outside.wav: outside the engine's roots" in msg
        with EngineClient(*server.address, token="s3cret") as client:
            assert client.annotate_region(str(audio), 0.0, 1.0)["end_s"] == 1.0
    finally:
        raw.close()
        listener.close()
        server.stop()


def test_non_loopback_bind_needs_a_token(annotator: Any) -> None:
    with pytest.raises(InvalidRequest, match="without a token"):
        ServerConfig(host="0.0.0.0", port=0)
    server = EngineServer(annotator, ServerConfig(host="0.0.0.0", port=0, token="t"))
    server.start()
    try:
        with EngineClient("127.0.0.1", server.address[1], token="t") as client:
            assert client.ping()["pong"]
    finally:
        server.stop()


def test_resent_id_is_answered_once_then_replayed(engine: Any, raw: RawOsc, audio: Path) -> None:
    args = ("dup", 0, "", str(audio), 0.0, 2.0)
    raw.send(protocol.ANNOTATE, *args)
    raw.send(protocol.ANNOTATE, *args)
    first = raw.replies(until_final=2, timeout_s=1.0)
    finals = [m for m in first if m.address in protocol.FINAL_REPLIES]
    assert len(finals) == 1 and finals[0].params[0] == "dup"
    raw.send(protocol.ANNOTATE, *args)
    assert raw.final().params == finals[0].params


def test_bundle_messages_each_get_a_reply(engine: Any, raw: RawOsc) -> None:
    bundle = OscBundleBuilder(IMMEDIATELY)
    for rid in ("b1", "b2"):
        m = OscMessageBuilder(protocol.PING)
        for v in (rid, 0, ""):
            m.add_arg(v)
        bundle.add_content(m.build())
    raw.send_raw(bundle.build().dgram)
    ids = sorted(m.params[0] for m in raw.replies(until_final=2) if m.address == protocol.RESULT)
    assert ids == ["b1", "b2"]


def test_flood_every_request_gets_exactly_one_final_reply(annotator: Any, audio: Path) -> None:
    server = serve(annotator, queue_size=4)
    raw = RawOsc(server.address)
    finals: dict[str, list[str]] = defaultdict(list)
    heard: set[str] = set()
    last_rx = [time.monotonic()]
    stop = threading.Event()

    def receive() -> None:
        raw.sock.settimeout(0.1)
        while not stop.is_set():
            try:
                data = raw.sock.recv(65536)
            except TimeoutError:
                continue
            last_rx[0] = time.monotonic()
            m = OscMessage(data)
            heard.add(m.params[0])
            if m.address in protocol.FINAL_REPLIES:
                finals[m.params[0]].append(m.address)

    t = threading.Thread(target=receive, daemon=True)
    t.start()
    try:
        ids = [f"f{i}" for i in range(1000)]
        for i, rid in enumerate(ids):
            raw.send(protocol.ANNOTATE, rid, 0, "", str(audio), 0.0, 2.0)
            if i % 100 == 99:
                time.sleep(0.01)
        deadline = time.monotonic() + 60.0
        while len(finals) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.2)
            if time.monotonic() - last_rx[0] < 1.0:
                continue
            for rid in ids:  # requests the kernel dropped (engine quiet, never heard of them)
                if rid not in heard:
                    raw.send(protocol.ANNOTATE, rid, 0, "", str(audio), 0.0, 2.0)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
        raw.close()
        server.stop()
    assert sorted(finals) == sorted(ids)
    assert all(len(v) == 1 for v in finals.values())
    kinds = {a for v in finals.values() for a in v}
    assert kinds == {protocol.RESULT, protocol.BUSY}


def test_parse_regions() -> None:
    assert parse_regions("") is None
    r = parse_regions('[[0, 1.5], [1.5, 3, "b"]]')
    assert [(x.start_s, x.end_s, x.name) for x in r] == [(0.0, 1.5, ""), (1.5, 3.0, "b")]
    for bad in ("[]", "[[0]]", "[[0, 1, 2]]", "[[true, 2]]", "[[-1, 2]]", '{"a": 1}'):
        with pytest.raises(InvalidRequest):
            parse_regions(bad)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_engine(port: int, store: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.serve", "--port", str(port), "--store", str(store)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_up(client: EngineClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        assert proc.poll() is None, "engine exited"
        try:
            client.ping(timeout_s=0.5)
            return
        except Exception:
            continue
    raise AssertionError("engine did not come up")


def test_sigkill_mid_run_loses_no_acknowledged_annotation(tmp_path: Path) -> None:
    path = tones(tmp_path / "take.wav", [150.0 + 20 * i for i in range(40)], seconds_each=1.0)
    store = tmp_path / "store.sqlite3"
    port = _free_port()
    proc = _start_engine(port, store)
    acked: dict[tuple[float, float], dict[str, Any]] = {}
    try:
        with EngineClient("127.0.0.1", port, timeout_s=30.0, retries=0) as client:
            _wait_up(client, proc)
            pending = [
                client.submit(
                    protocol.ANNOTATE,
                    {"path": str(path), "start_s": float(i), "end_s": float(i + 1)},
                )
                for i in range(30)
            ]
            while len(acked) < 8:
                for p in pending:
                    if p.done() and p.exception() is None:
                        r = p.result()
                        acked[(r["start_s"], r["end_s"])] = r
                time.sleep(0.002)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            for p in pending:  # answers that raced the kill were acknowledged too
                if p.done() and p.exception() is None:
                    r = p.result()
                    acked[(r["start_s"], r["end_s"])] = r
        assert len(acked) < 30, "the engine finished before it was killed"
        proc = _start_engine(port, store)
        with EngineClient("127.0.0.1", port, timeout_s=30.0) as client:
            _wait_up(client, proc)
            stored = {(r["start_s"], r["end_s"]): r for r in client.annotations(str(path))}
            lite = presets.load("lite")
            for span, ann in acked.items():
                # the store keeps the region's evidence; a reply is its (one-region) track
                # view, with the chords the region reads from its samples
                raw = RegionAnnotation.from_dict(stored[span])
                clip = load_audio(str(path), start_s=span[0], end_s=span[1])
                chords = region_chords(clip, analysis=lite.analysis)
                told = resolve_track(carry_chords([raw], chords), preset=lite)[0]
                assert attach_chords([told], told.chords)[0].to_dict() == ann
    finally:
        proc.kill()
        proc.wait(10)


def test_engine_command_logs_where_it_listens_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.serve",
            "--port",
            "0",
            "--store",
            str(tmp_path / "s.sqlite3"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        while "listening on" not in line:
            line = proc.stderr.readline()
            assert line, "the engine exited without saying where it listens"
        port = int(line.rsplit(":", 1)[1].split()[0])
        with EngineClient("localhost", port) as client:
            assert client.ping()["preset"] == "lite"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait(10)


def test_engine_command_refuses_an_open_bind_without_token(tmp_path: Path) -> None:
    import argparse

    from engine import serve as engine_command

    parser = argparse.ArgumentParser()
    engine_command.add_arguments(parser)
    args = parser.parse_args(
        ["--host", "0.0.0.0", "--port", "0", "--token", "", "--store", str(tmp_path / "s.sqlite3")]
    )
    assert engine_command.run(args) == 2
    args = parser.parse_args(
        ["--port", "0", "--root", str(tmp_path / "missing"), "--store", str(tmp_path / "s.sqlite3")]
    )
    assert engine_command.run(args) == 2
