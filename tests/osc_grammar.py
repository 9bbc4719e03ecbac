"""Datagrams for fuzzing the engine, generated from a grammar over our OSC address space.

Four kinds, drawn with a seeded :class:`random.Random` (fast enough for 100,000 datagrams in a
benchmark; the tests draw a slice of the same stream):

* ``valid``: a request of :data:`daw_bridge.protocol.REQUESTS` with arguments of the declared
  types, their values drawn from edge cases (real and missing files, relative paths, NaN,
  negative and huge numbers, long ids, JSON that is almost right), sometimes in a bundle;
* ``truncated``: a valid datagram cut short at a random byte;
* ``mutated``: a valid datagram with bytes flipped, a type tag swapped for another OSC type,
  a bundle element's size rewritten, or bytes inserted or removed;
* ``oversized``: datagrams at or past the gate's limits (64 KB strings, too many arguments,
  long addresses, bundles too many or too deep, blobs that claim more than they hold).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

from daw_bridge import protocol

KINDS = ("valid", "truncated", "mutated", "oversized")
OSC_TAGS = "ifsbhdtTFNIcrm[]"
MAX_UDP = 65507


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (4 - len(b) % 4)


def _string(s: str) -> bytes:
    return _pad(s.encode("utf-8", "surrogatepass"))


def message(address: str, args: Sequence[tuple[str, object]]) -> bytes:
    """An OSC message from ``(tag, value)`` pairs (tags ``i f d h s b``), built by hand so
    that any value the grammar draws can be framed."""
    tags = "," + "".join(t for t, _ in args)
    out = [_string(address), _string(tags)]
    for tag, value in args:
        if tag == "i":
            out.append(struct.pack(">i", int(value)))  # type: ignore[call-overload]
        elif tag == "f":
            out.append(struct.pack(">f", float(value)))  # type: ignore[arg-type]
        elif tag == "d":
            out.append(struct.pack(">d", float(value)))  # type: ignore[arg-type]
        elif tag == "h":
            out.append(struct.pack(">q", int(value)))  # type: ignore[call-overload]
        elif tag == "s":
            out.append(_string(str(value)))
        elif tag == "b":
            blob = bytes(value)  # type: ignore[call-overload]
            out.append(struct.pack(">i", len(blob)) + _pad(blob) if blob else struct.pack(">i", 0))
    return b"".join(out)


def bundle(elements: Sequence[bytes], *, timetag: int = 1) -> bytes:
    """An OSC bundle of ``elements`` (timetag 1 = immediately)."""
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return b"#bundle\x00" + struct.pack(">Q", timetag) + body


class Grammar:
    """Draws datagrams of the four kinds.

    Args:
        seed: the stream's seed (the same seed draws the same datagrams).
        files: audio files the engine may read (valid requests name them half the time).
    """

    def __init__(self, seed: int, files: Sequence[str] = ()) -> None:
        self.rng = random.Random(seed)
        self.files = list(files)
        self.requests = list(protocol.REQUESTS.values())

    def draw(self) -> tuple[str, bytes]:
        """One datagram and its kind."""
        kind = self.rng.choices(KINDS, weights=(4, 2, 3, 1))[0]
        return kind, getattr(self, kind)()[:MAX_UDP]

    # Values ---------------------------------------------------------------------------------

    def _text(self) -> str:
        r = self.rng
        return r.choice(
            [
                "",
                "x",
                "é" * r.randint(1, 50),
                "a" * r.randint(100, 3000),
                "\ud800" if r.random() < 0.1 else "\u2028",
                "../../etc/passwd",
                "%s%n",
                "[" * r.randint(1, 200),
                "null",
                "\\u0000",
            ]
        )

    def _path(self) -> str:
        r = self.rng
        if self.files and r.random() < 0.5:
            return r.choice(self.files)
        return r.choice(
            ["", "relative.wav", "/no/such/file.wav", "/etc/passwd", "/dev/zero", "/tmp", "/"]
        )

    def _json(self) -> str:
        r = self.rng
        start = r.uniform(-5, 20)
        return r.choice(
            [
                "",
                "[]",
                f"[[{start:.3f}, {start + r.uniform(-2, 10):.3f}]]",
                f'[[0, 5, "{self._text()[:20]}"], [5, 10]]',
                "[[0, 1e400]]",
                "[[NaN, 1]]",
                '["/no/such.wav"]',
                "[" * 5000 + "]" * 5000,
                "{}",
                "[[0, 1, 2, 3]]",
                "[" + ",".join(f"[{i}, {i + 1}]" for i in range(r.randint(1, 400))) + "]",
                self._text(),
            ]
        )

    def _float(self) -> float:
        r = self.rng
        return r.choice(
            [0.0, -1.0, 1.0, r.uniform(0, 12), 1e30, -1e30, float("nan"), float("inf"), 3600.0]
        )

    def _int(self) -> int:
        return self.rng.choice([0, 1, -1, 9000, 65535, 65536, 2**31 - 1, -(2**31)])

    def _request(self) -> bytes:
        r = self.rng
        m = r.choice(self.requests)
        args: list[tuple[str, object]] = []
        for a in m.args:
            if a.name == "id":
                value: object = "f" * r.choice([1, 8, 128, 129, 400])
                value = f"{r.getrandbits(32):08x}" if r.random() < 0.7 else value
            elif a.name == "reply_port":
                value = 0 if r.random() < 0.8 else self._int()
            elif a.name == "token":
                value = "" if r.random() < 0.9 else self._text()
            elif a.name in ("path", "target"):
                value = self._path() if a.name == "path" else self._text()
            elif a.json:
                value = self._json()
            elif a.type == "f":
                value = self._float()
            elif a.type == "i":
                value = self._int()
            else:
                value = self._text()
            args.append((a.type, value))
        if r.random() < 0.1 and args:  # an argument too many or too few
            args = args[:-1] if r.random() < 0.5 else [*args, ("s", "extra")]
        if r.random() < 0.05:  # a float where an int is declared, and the like
            i = r.randrange(len(args))
            args[i] = ("d", self._float())
        return message(m.path, args)

    # Kinds ----------------------------------------------------------------------------------

    def valid(self) -> bytes:
        r = self.rng
        if r.random() < 0.15:
            n = r.randint(1, 4)
            return bundle([self._request() for _ in range(n)], timetag=r.choice([0, 1, 2**63]))
        return self._request()

    def truncated(self) -> bytes:
        d = self.valid()
        return d[: self.rng.randrange(0, len(d))]

    def mutated(self) -> bytes:
        r = self.rng
        d = bytearray(self.valid())
        how = r.randrange(5)
        if how == 0:  # flip bits
            for _ in range(r.randint(1, 8)):
                d[r.randrange(len(d))] ^= 1 << r.randrange(8)
        elif how == 1:  # swap a type tag for another OSC type
            comma = d.find(b",")
            end = d.find(b"\x00", comma)
            if 0 <= comma < end - 1:
                d[r.randrange(comma + 1, end)] = ord(r.choice(OSC_TAGS))
        elif how == 2:  # a bundle element's size rewritten
            if d.startswith(b"#bundle"):
                d[16:20] = struct.pack(">i", r.choice([-4, -1, 0, 3, 2**31 - 1, len(d)]))
            else:
                d = bytearray(bundle([bytes(d)]))
                d[16:20] = struct.pack(">i", r.choice([-4, 0, len(d), 2**31 - 1]))
        elif how == 3:  # bytes inserted
            i = r.randrange(len(d) + 1)
            d[i:i] = bytes(r.getrandbits(8) for _ in range(r.choice([1, 2, 3, 4, 8])))
        else:  # bytes removed
            i = r.randrange(len(d))
            del d[i : i + r.choice([1, 2, 3, 4, 8])]
        return bytes(d)

    def oversized(self) -> bytes:
        r = self.rng
        how = r.randrange(6)
        if how == 0:  # a string argument filling a UDP datagram
            d = message(protocol.PING, [("s", "x"), ("i", 0), ("s", "t" * 65000)])
            return d[:MAX_UDP]
        if how == 1:  # too many arguments
            return message(protocol.PING, [("i", i) for i in range(r.choice([17, 100, 5000]))])
        if how == 2:  # a long address
            return message("/sonicverse/" + "a" * r.choice([120, 1000, 60000]), [("s", "x")])
        if how == 3:  # too many messages in a bundle
            ping = message(protocol.PING, [("s", "p"), ("i", 0), ("s", "")])
            return bundle([ping] * r.choice([33, 500, 2000]))
        if how == 4:  # bundles nested deep
            d = message(protocol.PING, [("s", "p"), ("i", 0), ("s", "")])
            for _ in range(r.choice([3, 10, 1000])):
                d = bundle([d])
            return d[:MAX_UDP]
        # a blob that claims more than it holds
        head = _string(protocol.PING) + _string(",sisb") + _string("p") + struct.pack(">i", 0)
        return head + _string("") + struct.pack(">i", r.choice([2**31 - 1, 65000, -8]))
