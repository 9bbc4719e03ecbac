"""A minimal OSC 1.0 codec for Live's embedded Python (no python-osc there).

Encodes messages with string (s), int32 (i) and float32 (f) arguments; decodes messages
with s, i, f, d (float64), h (int64), T, F, N and b (blob) arguments. Bundles are not
decoded (the engine never sends them).
"""

import struct


class OscError(ValueError):
    """A datagram that is not a well-formed OSC message."""


def _pad(data):
    return data + b"\0" * (4 - len(data) % 4)


def _string(text):
    data = text.encode("utf-8")
    if b"\0" in data:
        raise OscError(f"OSC strings cannot contain NUL: {text!r}")
    return _pad(data)


def encode(address, args):
    """One OSC message: ``address`` and a list of str / int / float arguments."""
    tags = ","
    payload = b""
    for value in args:
        if isinstance(value, bool):
            raise OscError(f"booleans are not sent: {value!r}")
        if isinstance(value, int):
            tags += "i"
            payload += struct.pack(">i", value)
        elif isinstance(value, float):
            tags += "f"
            payload += struct.pack(">f", value)
        elif isinstance(value, str):
            tags += "s"
            payload += _string(value)
        else:
            raise OscError(f"unsupported argument type {type(value).__name__}")
    return _string(address) + _string(tags) + payload


def _read_string(data, i):
    end = data.find(b"\0", i)
    if end < 0:
        raise OscError(f"unterminated string at byte {i}")
    try:
        text = data[i:end].decode("utf-8")
    except UnicodeDecodeError:
        raise OscError(f"string at byte {i} is not UTF-8") from None
    return text, (end // 4 + 1) * 4


def _unpack(fmt, data, i):
    size = struct.calcsize(fmt)
    if i + size > len(data):
        raise OscError(f"argument at byte {i} runs past the end")
    return struct.unpack(fmt, data[i : i + size])[0], i + size


def decode(data):
    """``(address, [args])`` of one OSC message.

    Raises:
        OscError: not a message (bundles included) or malformed.
    """
    if not data.startswith(b"/"):
        raise OscError("not an OSC message")
    address, i = _read_string(data, 0)
    if i >= len(data):
        return address, []
    tags, i = _read_string(data, i)
    if not tags.startswith(","):
        raise OscError("missing type tags")
    args = []
    for tag in tags[1:]:
        if tag == "s":
            value, i = _read_string(data, i)
        elif tag == "i":
            value, i = _unpack(">i", data, i)
        elif tag == "f":
            value, i = _unpack(">f", data, i)
        elif tag == "d":
            value, i = _unpack(">d", data, i)
        elif tag == "h":
            value, i = _unpack(">q", data, i)
        elif tag == "b":
            size, i = _unpack(">i", data, i)
            if size < 0 or i + size > len(data):
                raise OscError(f"blob at byte {i} runs past the end")
            value, i = data[i : i + size], i + (size + 3) // 4 * 4
        elif tag in "TFN":
            value = {"T": True, "F": False, "N": None}[tag]
        else:
            raise OscError(f"unsupported type tag {tag!r}")
        args.append(value)
    return address, args
