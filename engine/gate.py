"""The datagram gate: what every UDP datagram passes before python-osc parses it.

python-osc trusts the framing it is given: in 1.10.2 (the latest release) a bundle element
with a negative size sends ``OscBundle._parse_contents`` into an endless loop, and a string
that is not UTF-8 raises an uncaught ``UnicodeDecodeError``. :func:`check_datagram` walks
the framing itself first: bundle element sizes, nesting depth, message count, address and
type-tag strings and argument sizes. Every byte is looked at a bounded number of times, so
a bad datagram costs O(its size) once and is then dropped without a reply.

:class:`RateLimiter` (a token bucket per sender) and :class:`LogLimiter` (at most a few log
lines per sender per second) keep a flood from stalling the engine or filling its log.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

BUNDLE_PREFIX = b"#bundle\x00"
ARG_SIZES: dict[str, int] = {"i": 4, "f": 4, "h": 8, "d": 8, "s": -1}
"""Argument type tags the engine accepts and their sizes in bytes (-1: padded string)."""


class FramingError(ValueError):
    """A datagram whose OSC framing the gate refuses (the message says why and where)."""


@dataclass(frozen=True)
class GateLimits:
    """What one datagram may hold.

    Attributes:
        max_datagram_bytes: larger datagrams are refused.
        max_depth: bundles nested deeper than this are refused (1 = a bundle of messages).
        max_messages: messages in one datagram, all bundles counted.
        max_type_tags: arguments of one message.
        max_address_bytes: longest OSC address.
    """

    max_datagram_bytes: int = 65535
    max_depth: int = 2
    max_messages: int = 32
    max_type_tags: int = 16
    max_address_bytes: int = 128

    def __post_init__(self) -> None:
        for name in (
            "max_datagram_bytes",
            "max_depth",
            "max_messages",
            "max_type_tags",
            "max_address_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")


def check_datagram(data: bytes, limits: GateLimits = GateLimits()) -> int:
    """Check the OSC framing of a datagram without building any message.

    Args:
        data: the datagram as received.
        limits: what it may hold.

    Returns:
        The number of messages it carries.

    Raises:
        FramingError: naming the first framing problem and its byte offset.
    """
    if len(data) > limits.max_datagram_bytes:
        raise FramingError(f"{len(data)} bytes: expected at most {limits.max_datagram_bytes}")
    count = [0]
    _check_packet(bytes(data), 0, len(data), 0, limits, count)
    return count[0]


def _check_packet(
    data: bytes, start: int, end: int, depth: int, limits: GateLimits, count: list[int]
) -> None:
    if (end - start) % 4 or end <= start:
        raise FramingError(f"packet at byte {start} of {end - start} bytes: expected 4k > 0")
    if data[start : start + 8] == BUNDLE_PREFIX:
        _check_bundle(data, start, end, depth + 1, limits, count)
    elif data[start] == ord("/"):
        count[0] += 1
        if count[0] > limits.max_messages:
            raise FramingError(f"more than {limits.max_messages} messages in one datagram")
        _check_message(data, start, end, limits)
    else:
        raise FramingError(f"packet at byte {start}: neither a message nor a bundle")


def _check_bundle(
    data: bytes, start: int, end: int, depth: int, limits: GateLimits, count: list[int]
) -> None:
    if depth > limits.max_depth:
        raise FramingError(f"bundle at byte {start} nested {depth} deep: max {limits.max_depth}")
    i = start + 16  # prefix + 8-byte time tag
    if i > end:
        raise FramingError(f"bundle at byte {start}: shorter than its header")
    while i < end:
        if i + 4 > end:
            raise FramingError(f"bundle element at byte {i}: truncated size")
        (size,) = struct.unpack_from(">i", data, i)
        i += 4
        if size <= 0 or size % 4 or i + size > end:
            raise FramingError(
                f"bundle element at byte {i - 4}: size {size}, expected a positive multiple "
                f"of 4 of at most {end - i}"
            )
        _check_packet(data, i, i + size, depth, limits, count)
        i += size


def _string(data: bytes, start: int, end: int, what: str) -> tuple[str, int]:
    """A padded OSC string at ``start``: its text and the index after its padding."""
    nul = data.find(b"\x00", start, end)
    if nul < 0:
        raise FramingError(f"{what} at byte {start}: not terminated")
    stop = start + ((nul - start) // 4 + 1) * 4
    if stop > end:
        raise FramingError(f"{what} at byte {start}: padding runs past the packet")
    try:
        text = data[start:nul].decode("utf-8")
    except UnicodeDecodeError:
        raise FramingError(f"{what} at byte {start}: not UTF-8") from None
    return text, stop


def _check_message(data: bytes, start: int, end: int, limits: GateLimits) -> None:
    if data.find(b"\x00", start, min(end, start + limits.max_address_bytes + 1)) < 0:
        raise FramingError(f"address at byte {start}: longer than {limits.max_address_bytes}")
    _, i = _string(data, start, end, "address")
    if i >= end or data[i] != ord(","):
        raise FramingError(f"message at byte {start}: no type tag string")
    tag_end = min(end, i + limits.max_type_tags + 2)
    if data.find(b"\x00", i, tag_end) < 0:
        raise FramingError(f"message at byte {start}: more than {limits.max_type_tags} arguments")
    tags, i = _string(data, i, end, "type tags")
    for tag in tags[1:]:
        size = ARG_SIZES.get(tag)
        if size is None:
            raise FramingError(
                f"message at byte {start}: type tag {tag!r}, expected one of {''.join(ARG_SIZES)}"
            )
        if size < 0:
            _, i = _string(data, i, end, "string argument")
        elif i + size > end:
            raise FramingError(f"message at byte {start}: argument {tag!r} runs past the packet")
        else:
            i += size
    if i != end:
        raise FramingError(f"message at byte {start}: {end - i} bytes after its arguments")


class RateLimiter:
    """A token bucket per sender: ``rate`` units a second, bursts up to ``burst``.

    Args:
        rate: units refilled per second.
        burst: bucket size.
        max_senders: senders remembered (least recently seen forgotten first).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_senders: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate={rate}, burst={burst}: expected rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_senders = max_senders
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def allow(self, sender: Hashable, cost: float = 1.0) -> bool:
        """Take ``cost`` units from ``sender``'s bucket; False when it does not hold them."""
        now = self._clock()
        tokens, last = self._buckets.pop(sender, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= cost
        self._buckets[sender] = (tokens - cost if ok else tokens, now)
        while len(self._buckets) > self.max_senders:
            self._buckets.popitem(last=False)
        return ok


class LogLimiter:
    """At most ``per_second`` log lines per sender per second; the rest are counted.

    Args:
        per_second: lines allowed per sender in each one-second window.
        max_senders: senders remembered.
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        per_second: int,
        *,
        max_senders: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second < 1:
            raise ValueError(f"per_second={per_second}: must be >= 1")
        self.per_second = per_second
        self.max_senders = max_senders
        self._clock = clock
        self._windows: OrderedDict[Hashable, tuple[int, int, int]] = OrderedDict()

    def allow(self, sender: Hashable) -> tuple[bool, int]:
        """Whether one more line about ``sender`` may be logged now, and how many lines were
        suppressed in its previous window (to be reported with the line that is allowed)."""
        second = int(self._clock())
        window, used, dropped = self._windows.pop(sender, (second, 0, 0))
        suppressed = 0
        if window != second:
            suppressed, window, used, dropped = dropped, second, 0, 0
        ok = used < self.per_second
        self._windows[sender] = (window, used + ok, dropped + (not ok))
        while len(self._windows) > self.max_senders:
            self._windows.popitem(last=False)
        return ok, suppressed
