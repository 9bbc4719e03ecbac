"""Whole catalogues: batch annotation of folders and manifests, locally or on Ray.

- :mod:`engine.batch.jobs`: what to annotate (a folder walked, or manifest rows).
- :mod:`engine.batch.worker`: the one worker function every runner calls (loads the preset
  once, annotates a job, returns typed rows or the error).
- :mod:`engine.batch.ledger`: which jobs are finished (resumable batches).
- :mod:`engine.batch.runner`: the local process pool and the Ray Data runner.
- :mod:`engine.batch.table`, :mod:`engine.batch.summary`: the Parquet table and the plots.
- :mod:`engine.batch.cli`: ``sonicverse batch``.

Importing this package imports nothing heavy; Ray is imported only by the Ray runner.
"""
