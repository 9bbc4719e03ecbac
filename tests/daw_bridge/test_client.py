"""EngineClient and ``sonicverse send`` against scripted fake engines (python-osc servers)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import ThreadingOSCUDPServer

from daw_bridge import protocol, send
from daw_bridge.client import (
    EngineBusy,
    EngineClient,
    EngineRestarted,
    EngineTimeout,
    Pending,
    ReplyError,
)


def test_importing_daw_bridge_imports_neither_torch_nor_engine() -> None:
    code = (
        "import sys, daw_bridge, daw_bridge.protocol, daw_bridge.client, daw_bridge.send\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'engine', 'numpy'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _reply(path: str, **values: Any) -> bytes:
    b = OscMessageBuilder(path)
    for tag, v in protocol.encode(protocol.REPLIES[path], values):
        b.add_arg(v, tag)
    return b.build().dgram


class FakeEngine:
    """A python-osc server whose answer to each request is scripted by ``behave``."""

    def __init__(self, behave: Callable[[FakeEngine, tuple[str, int], str, list[Any]], None]):
        self.behave = behave
        self.received: list[tuple[str, list[Any]]] = []
        d = Dispatcher(strict_timing=False)
        d.set_default_handler(self._on, needs_reply_address=True)
        self.server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def _on(self, client: tuple[str, int], address: str, *params: Any) -> None:
        self.received.append((address, list(params)))
        self.behave(self, client, address, list(params))

    def send(self, to: tuple[str, int], dgram: bytes) -> None:
        self.server.socket.sendto(dgram, to)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Any:
    engines: list[FakeEngine] = []

    def make(behave: Any) -> FakeEngine:
        engines.append(FakeEngine(behave))
        return engines[-1]

    yield make
    for e in engines:
        e.close()


def test_result_progress_and_chunks_out_of_order(fake: Any) -> None:
    result = {"text": "é" * 20000, "n": 3}
    pieces = protocol.split_utf8(json.dumps(result))
    assert len(pieces) > 2

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:  # the client's probe
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": true}'))
            return
        e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))
        e.send(to, _reply(protocol.PROGRESS, id=p[0], stage="analyze", done=1, total=2))
        for i in reversed(range(len(pieces))):
            e.send(to, _reply(protocol.RESULT, id=p[0], part=i, parts=len(pieces), json=pieces[i]))

    engine = fake(behave)
    seen: list[tuple[str, int, int]] = []
    with EngineClient(port=engine.port) as client:
        got = client.request(
            protocol.NARRATE, {"path": "/x.wav"}, on_progress=lambda *a: seen.append(a)
        )
    assert got == result and seen == [("analyze", 1, 2)]
    address, params = engine.received[0]
    assert address == protocol.NARRATE
    assert params[1:] == [0, "", "/x.wav", "", "", ""]  # path, track, regions, channels


def test_error_and_busy_replies_raise(fake: Any) -> None:
    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            e.send(to, _reply(protocol.ERROR, id=p[0], code="unauthorized", message="no"))
        else:
            e.send(to, _reply(protocol.BUSY, id=p[0], queued=4, capacity=4))

    engine = fake(behave)
    with EngineClient(port=engine.port, token="t") as client:
        with pytest.raises(ReplyError) as err:
            client.ping()
        assert (err.value.code, err.value.message) == ("unauthorized", "no")
        with pytest.raises(EngineBusy) as busy:
            client.annotate_region("/a.wav", 0.0, 1.0)
        assert (busy.value.queued, busy.value.capacity) == (4, 4)
    assert all(params[2] == "t" for _, params in engine.received)


def test_lost_datagrams_are_resent_with_the_same_id(fake: Any) -> None:
    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if len(e.received) >= 3:  # the first two "get lost"
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": true}'))

    engine = fake(behave)
    with EngineClient(port=engine.port, retries=3, retry_interval_s=0.05) as client:
        assert client.ping() == {"pong": True}
    ids = {params[0] for _, params in engine.received}
    assert len(engine.received) == 3 and len(ids) == 1


def test_silent_engine_times_out_after_the_retries(fake: Any) -> None:
    engine = fake(lambda *a: None)
    with EngineClient(port=engine.port, retries=2, retry_interval_s=0.05) as client:
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout, match="no answer at all"):
            client.ping(timeout_s=10.0)
        assert time.monotonic() - t0 < 2.0
    assert len(engine.received) == 3


def test_accepted_request_waits_for_its_timeout_without_resending(fake: Any) -> None:
    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))  # next, or running

    engine = fake(behave)
    positions: list[int] = []
    with EngineClient(port=engine.port, retry_interval_s=0.05) as client:
        pending = client.submit(
            protocol.ANNOTATE,
            {"path": "/a.wav", "start_s": 0, "end_s": 1},
            timeout_s=0.5,
            on_accepted=positions.append,
        )
        with pytest.raises(EngineTimeout, match="accepted"):
            pending.result()
    annotates = [a for a, _ in engine.received if a == protocol.ANNOTATE]
    assert positions == [0] and len(annotates) == 1  # (the client's probes are pings)


@pytest.mark.parametrize("queued", [True, False])
def test_time_waiting_behind_other_requests_does_not_count_against_the_timeout(
    fake: Any, queued: bool
) -> None:
    """An engine that says the request waits behind others (position > 0) for 1 s, then
    works on it for 0.3 s: with a 0.8 s timeout the answer comes, as the wait is the queue's
    and not the request's; the same 1.3 s spent working on it is over the timeout."""
    first: list[float] = []
    answered: list[bool] = []

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": 1}'))
            return
        first.append(time.monotonic())
        waited = time.monotonic() - first[0]
        position = 2 if queued and waited < 1.0 else 0
        e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=position))
        if waited >= 1.0 and not answered:  # its work starts now and takes 0.3 s
            answered.append(True)
            done = _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"ok": 1}')
            threading.Timer(0.3, e.send, (to, done)).start()

    engine = fake(behave)
    with EngineClient(port=engine.port, reask_interval_s=0.1, probe_interval_s=60.0) as client:
        pending = client.submit(
            protocol.ANNOTATE, {"path": "/a.wav", "start_s": 0, "end_s": 1}, timeout_s=0.8
        )
        if queued:
            assert pending.result() == {"ok": 1}
        else:
            with pytest.raises(EngineTimeout, match="accepted"):
                pending.result()


def test_a_final_reply_lost_on_the_way_comes_when_the_client_asks_again(fake: Any) -> None:
    """The engine accepts, finishes, and its final reply is lost (a receive buffer full under
    load): the client asks again under the same id after a quiet spell, and the engine's
    replay of the reply ends the request long before its timeout."""

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": true}'))
        elif sum(1 for a, q in e.received if a == address and q[0] == p[0]) == 1:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))  # the result: lost
        else:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"key": "C"}'))

    engine = fake(behave)
    with EngineClient(port=engine.port, timeout_s=30.0, reask_interval_s=0.3) as client:
        t0 = time.monotonic()
        assert _annotate(client).result() == {"key": "C"}
        assert time.monotonic() - t0 < 3.0
    annotates = [a for a, _ in engine.received if a == protocol.ANNOTATE]
    assert len(annotates) >= 2
    with pytest.raises(ValueError, match="reask_interval_s=0"):
        EngineClient(port=engine.port, reask_interval_s=0)


class Instances:
    """A fake engine that answers pings with an instance id and accepts everything else, so
    a test can restart it (a new id) or stop it (silence) under an accepted request."""

    def __init__(self) -> None:
        self.instance = "first"
        self.silent = False
        self.hold_pings = False  # pings go unanswered (the client's probe re-sends them)
        self.ignore: set[str] = set()  # request ids it never answers
        self.answer: dict[str, Any] | None = None  # set: requests are answered with it

    def __call__(self, e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if self.silent or (address == protocol.PING and self.hold_pings) or p[0] in self.ignore:
            return
        if address == protocol.PING:
            body = json.dumps({"pong": True, "instance": self.instance})
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=body))
        elif self.answer is not None:
            body = json.dumps(self.answer)
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=body))
        else:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))


def _annotate(client: EngineClient, **kw: Any) -> Any:
    return client.submit(protocol.ANNOTATE, {"path": "/a.wav", "start_s": 0, "end_s": 1}, **kw)


def test_a_restarted_engine_ends_the_requests_it_had_accepted(fake: Any) -> None:
    engines = Instances()
    engine = fake(engines)
    with EngineClient(port=engine.port, timeout_s=30.0, probe_interval_s=0.1) as client:
        pending = _annotate(client)
        time.sleep(0.3)  # accepted, and the first probe learnt the instance
        assert pending.accepted and not pending.done()
        engines.instance = "second"  # killed and started again: the request is gone with it
        t0 = time.monotonic()
        with pytest.raises(EngineRestarted, match="engine restarted: a new engine instance"):
            pending.result()
        assert time.monotonic() - t0 < 2.0
        assert pending.exception().request_id == pending.id  # type: ignore[union-attr]
        # sent again, the request is accepted by the new instance and keeps waiting
        again = _annotate(client)
        time.sleep(0.5)
        assert again.accepted and not again.done()


def _wait(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def _held_then_restarted(client: EngineClient, engines: Instances) -> Pending:
    """A request the first instance holds (probes every 0.25 s have seen it); then, pings held
    so that no probe sees it yet, the engine restarts as "second"."""
    old = _annotate(client)
    _wait(lambda: old.accepted)
    time.sleep(0.6)  # probes find "first" holding it
    engines.hold_pings = True
    time.sleep(0.3)  # a probe already answered by "first" is read
    engines.instance = "second"
    return old


def _restart_under(client: EngineClient, engines: Instances) -> tuple[Pending, Pending]:
    """As :func:`_held_then_restarted`, and a second request reaches the new instance before
    any probe sees it."""
    old = _held_then_restarted(client, engines)
    new = _annotate(client)
    _wait(lambda: new.accepted)
    return old, new


def test_a_request_the_new_instance_accepted_before_the_probe_saw_it_keeps_waiting(
    fake: Any,
) -> None:
    """The old request is lost with the old instance; the new one, which either instance may
    hold as far as the client can tell, is asked again and keeps waiting (it used to fail as
    "engine restarted" too)."""
    engines = Instances()
    engine = fake(engines)
    with EngineClient(port=engine.port, timeout_s=30.0, probe_interval_s=0.25) as client:
        old, new = _restart_under(client, engines)
        engines.hold_pings = False
        with pytest.raises(EngineRestarted, match="a new engine instance"):
            old.result(timeout_s=5.0)

        def sent(rid: str) -> int:
            return sum(1 for a, p in engine.received if a == protocol.ANNOTATE and p[0] == rid)

        _wait(lambda: sent(new.id) == 2 and new.accepted)
        assert not new.done() and sent(old.id) == 1


def test_a_request_asked_again_that_the_new_instance_never_answers_expires_soon(
    fake: Any,
) -> None:
    engines = Instances()
    engine = fake(engines)
    with EngineClient(
        port=engine.port, timeout_s=30.0, probe_interval_s=0.25, retry_interval_s=0.2
    ) as client:
        _, new = _restart_under(client, engines)
        engines.ignore.add(new.id)  # the new instance drops what is sent again
        engines.hold_pings = False
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout, match="no answer at all"):
            new.result()
        assert time.monotonic() - t0 < 5.0


def test_a_request_asked_again_of_the_new_instance_before_the_probe_keeps_waiting(
    fake: Any,
) -> None:
    """The engine restarts under a waiting request and the client's re-ask reaches the new
    instance (which queues it) before a probe sees that instance: the request is not failed
    as lost, since the new instance holds it."""
    engines = Instances()
    engine = fake(engines)
    with EngineClient(
        port=engine.port, timeout_s=30.0, probe_interval_s=0.25, reask_interval_s=1.5
    ) as client:
        pending = _held_then_restarted(client, engines)

        def sent() -> int:
            return sum(1 for a, p in engine.received if a == protocol.ANNOTATE)

        _wait(lambda: sent() >= 2)  # the re-ask, acknowledged by "second"
        engines.hold_pings = False
        time.sleep(1.0)  # a probe sees "second"
        assert client._instance == "second"
        assert not pending.done() and pending.accepted


def test_asking_again_does_not_spend_the_retries_a_missing_part_needs(fake: Any) -> None:
    """A queued request is asked after many times; then its two-part result loses a part:
    the client still asks for it again and gets it."""
    pieces = protocol.split_utf8(json.dumps({"text": "x" * 10000}))
    assert len(pieces) == 2

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": true}'))
            return
        asked = sum(1 for a, q in e.received if a == address and q[0] == p[0])
        if asked < 6:  # queued: acknowledged again each time it is asked
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=1))
            return
        for i in range(2 if asked > 6 else 1):  # the first time, part 1 is lost
            e.send(to, _reply(protocol.RESULT, id=p[0], part=i, parts=2, json=pieces[i]))

    engine = fake(behave)
    with EngineClient(
        port=engine.port, timeout_s=20.0, retries=1, retry_interval_s=0.1, reask_interval_s=0.1
    ) as client:
        t0 = time.monotonic()
        assert _annotate(client).result() == {"text": "x" * 10000}
        assert time.monotonic() - t0 < 5.0


def test_an_engine_that_stops_answering_ends_the_accepted_requests(fake: Any) -> None:
    engines = Instances()
    engine = fake(engines)
    with EngineClient(
        port=engine.port, timeout_s=30.0, probe_interval_s=0.1, retry_interval_s=0.05
    ) as client:
        pending = _annotate(client)
        time.sleep(0.3)
        engines.silent = True  # killed, not (yet) started again
        t0 = time.monotonic()
        with pytest.raises(EngineRestarted, match="stopped answering"):
            pending.result()
        assert time.monotonic() - t0 < 6.0  # two probes of 2 s unanswered in a row


def test_an_engine_that_stalls_for_one_probe_keeps_the_accepted_requests(fake: Any) -> None:
    """The engine stalls for 2.5 s (a busy machine): the probe sent as it stalls goes
    unanswered (2 s), the next one sent at once is answered late, and the request it had
    accepted gets its answer instead of failing as lost."""
    late: list[threading.Timer] = []
    stall_until = [0.0]

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            reply = _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"instance": "one"}')
        elif stall_until[0]:
            reply = _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"ok": 1}')
        else:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))
            return
        late.append(threading.Timer(max(0.0, stall_until[0] - time.monotonic()), e.send))
        late[-1].args = (to, reply)
        late[-1].start()

    engine = fake(behave)
    try:
        # (a probe's resends every 0.5 s, 4 in all, bound it to 2 s)
        with EngineClient(port=engine.port, timeout_s=10.0, probe_interval_s=0.1) as client:
            pending = _annotate(client)
            time.sleep(0.3)  # accepted, probed
            stall_until[0] = time.monotonic() + 2.5  # then answers all it was asked
            client.reask_interval_s = 0.2
            assert pending.result(timeout_s=8.0) == {"ok": 1}
    finally:
        for timer in late:
            timer.cancel()


@pytest.mark.parametrize("queue", [False, True])
def test_queue_credit_is_bounded(fake: Any, queue: bool) -> None:
    """An engine that keeps saying others are ahead (its worker hung) still times the
    request out, after at most the timeout and three times it in the queue."""

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": 1}'))
        else:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=2 if queue else 0))

    engine = fake(behave)
    with EngineClient(port=engine.port, reask_interval_s=0.05, probe_interval_s=60.0) as client:
        t0 = time.monotonic()
        with pytest.raises(EngineTimeout, match="accepted"):
            _annotate(client, timeout_s=0.3).result(timeout_s=5.0)  # (not "no reply within")
        took = time.monotonic() - t0
    assert (1.15 < took < 2.5) if queue else (took < 0.6)


def test_an_engine_that_keeps_its_instance_keeps_the_request_waiting(fake: Any) -> None:
    engine = fake(Instances())
    with EngineClient(port=engine.port, timeout_s=1.0, probe_interval_s=0.05) as client:
        pending = _annotate(client)
        with pytest.raises(EngineTimeout, match="accepted, then silence"):
            pending.result()
    pings = [a for a, _ in engine.received if a == protocol.PING]
    assert len(pings) >= 5  # it was probed all along, and that did not end it


def test_send_says_the_engine_restarted(fake: Any) -> None:
    engines = Instances()
    engine = fake(engines)
    threading.Timer(1.0, lambda: setattr(engines, "instance", "second")).start()
    status, reply = _run_send(
        ["region/annotate", "path=/a.wav", "start_s=0", "end_s=1", "--port", str(engine.port)]
    )
    assert (status, reply["code"]) == (send.EXIT_RESTARTED, "engine_restarted")
    assert reply["message"].startswith("engine restarted")


def test_submit_refuses_bad_arguments_before_sending(fake: Any) -> None:
    engine = fake(lambda *a: None)
    with EngineClient(port=engine.port) as client:
        with pytest.raises(protocol.ProtocolError, match="missing required argument 'end_s'"):
            client.submit(protocol.ANNOTATE, {"path": "/a.wav", "start_s": 0})
        with pytest.raises(protocol.ProtocolError, match="is a reply"):
            client.submit(protocol.RESULT, {})
    assert engine.received == []


def _run_send(argv: list[str]) -> tuple[int, dict[str, Any]]:
    parser = argparse.ArgumentParser()
    send.add_arguments(parser)
    out = io.StringIO()
    with redirect_stdout(out):
        status = send.run(parser.parse_args(argv))
    return status, json.loads(out.getvalue())


def test_send_prints_one_json_line_and_exits_by_outcome(fake: Any) -> None:
    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.CANCEL:
            e.send(to, _reply(protocol.ERROR, id=p[0], code="invalid_request", message="nope"))
        else:
            body = json.dumps({"args": p[3:]})
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=body))

    engine = fake(behave)
    port = ["--port", str(engine.port)]
    status, reply = _run_send(
        ["region/annotate", "path=/a b.wav", "start_s=1", "end_s=2.5", "name=Verse", *port]
    )
    assert status == 0 and reply["ok"] is True
    assert reply["result"] == {"args": ["/a b.wav", 1.0, 2.5, "", "Verse", "", "", 0]}
    status, reply = _run_send(["job/cancel", "target=x", *port])
    assert (status, reply["code"], reply["message"]) == (send.EXIT_ERROR, "invalid_request", "nope")
    status, reply = _run_send(["region/annotate", "start_s=one", *port])
    assert (status, reply["code"]) == (send.EXIT_USAGE, "bad_arguments")
    status, reply = _run_send(["region/annotate", "colour=red", *port])
    assert status == send.EXIT_USAGE and "unknown argument 'colour'" in reply["message"]
    status, reply = _run_send(["/sonicverse/nope/nope", *port])
    assert (status, reply["code"]) == (send.EXIT_USAGE, "unknown_address")


def test_send_list_describes_every_request() -> None:
    parser = argparse.ArgumentParser()
    send.add_arguments(parser)
    out = io.StringIO()
    with redirect_stdout(out):
        assert send.run(parser.parse_args(["--list"])) == 0
    listing = json.loads(out.getvalue())
    assert [r["address"] for r in listing["requests"]] == list(protocol.REQUESTS)


def _echo_args(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
    body = json.dumps({"args": p[3:]}, ensure_ascii=False)
    e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json=body))


def test_send_prints_ascii_json_for_non_ascii_names(fake: Any) -> None:
    engine = fake(_echo_args)
    parser = argparse.ArgumentParser()
    send.add_arguments(parser)
    out = io.StringIO()
    argv = ["region/annotate", "path=/a.wav", "start_s=0", "end_s=1", "name=Öl Ünd Café 声"]
    with redirect_stdout(out):
        send.run(parser.parse_args([*argv, "--port", str(engine.port)]))
    text = out.getvalue()
    assert text.isascii(), text
    assert json.loads(text)["result"]["args"][4] == "Öl Ünd Café 声"


def test_send_reads_args_file_and_writes_output_file(fake: Any, tmp_path: Any) -> None:
    engine = fake(_echo_args)
    args = tmp_path / "args.json"
    args.write_text(
        json.dumps({"path": "/it's here.wav", "start_s": 0.5, "end_s": 2, "name": 'Mike\'s "Gtr"'}),
        encoding="utf-8",
    )
    reply_file = tmp_path / "reply.json"
    parser = argparse.ArgumentParser()
    send.add_arguments(parser)
    out = io.StringIO()
    argv = ["region/annotate", "--args-file", str(args), "--output", str(reply_file)]
    with redirect_stdout(out):
        status = send.run(parser.parse_args([*argv, "--port", str(engine.port)]))
    assert status == 0 and out.getvalue() == ""
    reply = json.loads(reply_file.read_text(encoding="ascii"))
    assert reply["result"]["args"] == ["/it's here.wav", 0.5, 2.0, "", 'Mike\'s "Gtr"', "", "", 0]
    args.write_text("[1, 2]", encoding="utf-8")
    status, reply = _run_send(["region/annotate", "--args-file", str(args)])
    assert status == send.EXIT_USAGE and "expected a JSON object" in reply["message"]


def test_send_passes_channels_through_as_json_text(fake: Any, tmp_path: Any) -> None:
    # a stereo Ardour region: the right channel's file travels beside path
    engine = fake(_echo_args)
    right = ["/s/Keys%R.wav", '/s/Öl\'s "R".wav']
    args = tmp_path / "args.json"
    args.write_text(
        json.dumps({"path": "/s/Keys%L.wav", "start_s": 0, "end_s": 2, "channels": right}),
        encoding="utf-8",
    )
    options = ["--args-file", str(args), "--port", str(engine.port)]
    status, reply = _run_send(["region/annotate", *options])
    assert status == 0 and json.loads(reply["result"]["args"][6]) == right
    status, reply = _run_send(["region/annotate", f"channels={json.dumps(right[:1])}", *options])
    assert status == 0 and json.loads(reply["result"]["args"][6]) == right[:1]
    args.write_text(
        json.dumps({"path": "/a.wav", "start_s": 0, "end_s": 2, "name": ["x"]}), "utf-8"
    )
    status, reply = _run_send(["region/annotate", "--args-file", str(args)])
    assert status == send.EXIT_USAGE and "'name' must be a string or a number," in reply["message"]


def test_send_cancels_when_the_cancel_file_appears(fake: Any, tmp_path: Any) -> None:
    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.CANCEL:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json="{}"))
            e.send(to, _reply(protocol.ERROR, id=p[3], code="cancelled", message="cancelled"))
        else:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))
            e.send(to, _reply(protocol.PROGRESS, id=p[0], stage="analyze", done=1, total=3))

    engine = fake(behave)
    cancel = tmp_path / "cancel"
    progress = tmp_path / "progress.json"
    timer = threading.Timer(0.5, cancel.touch)
    timer.start()
    status, reply = _run_send(
        [
            "region/annotate",
            "path=/a.wav",
            "start_s=0",
            "end_s=1",
            "--port",
            str(engine.port),
            "--cancel-file",
            str(cancel),
            "--progress-file",
            str(progress),
            "--timeout",
            "10",
        ]
    )
    timer.join()
    assert (status, reply["code"]) == (send.EXIT_ERROR, "cancelled")
    assert json.loads(progress.read_text())["done"] == 1


def test_a_reply_waiting_behind_a_slow_callback_is_read_before_its_deadline(fake: Any) -> None:
    """The receive thread stalls in a progress callback (a busy machine, a slow handler)
    while a ping's answer arrives behind it: the answer is read before the ping's deadline is
    judged, instead of the ping expiring with its pong already in the socket."""

    def behave(e: FakeEngine, to: tuple[str, int], address: str, p: list[Any]) -> None:
        if address == protocol.PING:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": 1}'))
        elif address == protocol.NARRATE:
            e.send(to, _reply(protocol.PROGRESS, id=p[0], stage="analyze", done=1, total=2))

    engine = fake(behave)
    with EngineClient(port=engine.port, probe_interval_s=3600.0) as client:
        narrate = client.submit(
            protocol.NARRATE, {"path": "/x.wav"}, on_progress=lambda *a: time.sleep(1.5)
        )
        time.sleep(0.2)  # the progress reply is in; its callback holds the receive thread
        ping = client.submit(protocol.PING, timeout_s=1.0)
        assert ping.result(timeout_s=5.0) == {"pong": 1}
        narrate.cancel()
