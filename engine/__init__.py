"""SonicVerse engine: listens to audio regions and says what it hears.

Nothing is imported eagerly here: heavy modules (torch, transformers) load inside the
functions that need them.
"""

__version__ = "0.1.0"
