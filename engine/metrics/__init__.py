"""Metrics of the evaluation (``sonicverse evaluate``): captions, retrieval, features, report.

Each metric function takes plain Python/numpy values (references and predictions already
paired) and returns numbers; :mod:`engine.evaluate` pairs the manifest's rows with the
annotations and :mod:`engine.metrics.report` writes what came out.
"""
