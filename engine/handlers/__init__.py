"""One handler module per OSC domain, as the addresses read: ``/sonicverse/<domain>/<verb>``.

:mod:`engine.handlers.engine` answers ``engine/ping`` and ``engine/status``,
:mod:`engine.handlers.job` ``job/cancel``, :mod:`engine.handlers.region`
``region/annotate`` and :mod:`engine.handlers.track` ``track/narrate`` and
``track/annotations``. Each handler is ``(server, job) -> result dict``; the server
(:mod:`engine.server`) owns transport, validation, the queue and the replies, and calls them.
The registry (:mod:`engine.handlers.registry`) says which are answered at once by the network
thread and which by the worker that owns the models.
"""
