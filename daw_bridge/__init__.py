"""The bridge between audio workstations and the engine: the OSC protocol and its client.

Pure Python (no torch, no engine import): :mod:`daw_bridge.protocol` declares the address
space, :mod:`daw_bridge.client` talks to a running engine, :mod:`daw_bridge.send` is the
``sonicverse send`` command for DAW scripting languages without UDP sockets, and the
``reaper/`` and ``ableton/`` folders hold the DAW-side scripts.
"""

from daw_bridge.protocol import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
