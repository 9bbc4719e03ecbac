"""The Qt annotation panel (``sonicverse-panel``, ``python -m ui``, ``sonicverse panel``).

The panel talks to the engine only over OSC through :mod:`daw_bridge.client`; it never
imports :mod:`engine`. Qt is imported by the modules that need it, not here.
"""
