"""The address table is consistent and its encode/decode/split helpers are exact."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daw_bridge import protocol
from daw_bridge.protocol import ProtocolError


def test_every_address_follows_the_grammar():
    grammar = re.compile(r"^/sonicverse/[a-z]+/[a-z_]+$")
    for path, m in protocol.all_messages().items():
        assert grammar.match(path), path
        assert m.path == path
        assert m.domain == path.split("/")[2]


def test_requests_start_with_the_header_and_replies_with_the_id():
    for m in protocol.REQUESTS.values():
        assert m.args[: len(protocol.HEADER)] == protocol.HEADER
        assert m.direction == "request"
    for m in protocol.REPLIES.values():
        assert m.args[0].name == "id"
        assert m.direction == "reply"
    assert set(protocol.REPLIES) >= protocol.FINAL_REPLIES


def test_only_trailing_arguments_have_defaults():
    for m in protocol.all_messages().values():
        seen_default = False
        for a in m.args:
            assert not (seen_default and a.required), (m.path, a.name)
            seen_default |= not a.required


def test_encode_orders_fills_defaults_and_decode_inverts_it():
    m = protocol.REQUESTS[protocol.ANNOTATE]
    wire = protocol.encode(
        m, {"end_s": 10, "start_s": 1.5, "path": "/a.wav", "id": "x", "reply_port": 0, "token": ""}
    )
    assert [t for t, _ in wire] == list(m.typetags[1:])
    assert wire[3:6] == [("s", "/a.wav"), ("f", 1.5), ("f", 10.0)]
    decoded = protocol.decode(m, [v for _, v in wire][:6])
    assert decoded["lyrics"] == "" and decoded["end_s"] == 10.0 and decoded["id"] == "x"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        (["x", 0, "", "/a.wav", "zero", 1.0], "start_s='zero'"),
        (["x", 0, "", "/a.wav", 0.0], "takes 6 to 11 arguments"),
        (["x", 0, "", "/a.wav", 0.0, float("nan")], "must be finite"),
        (["x", True, "", "/a.wav", 0.0, 1.0], "reply_port=True"),
        ([3, 0, "", "/a.wav", 0.0, 1.0], "id=3"),
    ],
)
def test_decode_names_the_bad_argument(params, needle):
    with pytest.raises(ProtocolError) as err:
        protocol.decode(protocol.REQUESTS[protocol.ANNOTATE], params)
    assert err.value.code == "bad_arguments"
    assert needle in str(err.value)


def test_encode_refuses_unknown_and_missing_arguments():
    m = protocol.REQUESTS[protocol.CANCEL]
    with pytest.raises(ProtocolError, match="unknown argument"):
        protocol.encode(m, {"id": "a", "reply_port": 0, "token": "", "target": "b", "x": 1})
    with pytest.raises(ProtocolError, match="missing required argument 'target'"):
        protocol.encode(m, {"id": "a", "reply_port": 0, "token": ""})


def test_resolve_short_form_and_unknown():
    assert protocol.resolve("region/annotate") is protocol.REQUESTS[protocol.ANNOTATE]
    with pytest.raises(ProtocolError) as err:
        protocol.resolve("/sonicverse/region/explode")
    assert err.value.code == "unknown_address"
    assert protocol.ANNOTATE in str(err.value)


@given(st.text(), st.integers(min_value=4, max_value=64))
def test_split_utf8_joins_back_within_budget(text, max_bytes):
    pieces = protocol.split_utf8(text, max_bytes=max_bytes)
    assert "".join(pieces) == text
    assert all(len(p.encode("utf-8")) <= max_bytes for p in pieces)
    assert all(pieces) or pieces == [""]


def test_largest_result_datagram_fits():
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(protocol.RESULT)
    for tag, value in protocol.encode(
        protocol.REPLIES[protocol.RESULT],
        {"id": "x" * 64, "part": 0, "parts": 1, "json": "é" * (protocol.CHUNK_BYTES // 2)},
    ):
        b.add_arg(value, tag)
    assert len(b.build().dgram) <= protocol.MAX_DATAGRAM_BYTES
