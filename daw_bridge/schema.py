"""The version of the result documents engine and panel exchange and export.

``engine/schema/annotation-<SCHEMA_VERSION>.json`` describes the document; the engine writes
it, the panel reads and re-exports it. Pure Python, like the rest of ``daw_bridge``.
"""

SCHEMA_VERSION = "1.2"
