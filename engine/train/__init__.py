"""Training: heads, projector, LoRA and QLoRA on a dataset built by ``sonicverse dataset build``.

``config`` (the typed TOML), ``losses`` (LM, heads BCE, audio-lyrics InfoNCE), ``model`` (what
is trained, per stage), ``checkpointing`` (the release's layout, resume state, the preset),
``loop`` (the accelerate loop), ``main`` (``sonicverse train`` / ``python -m engine.train``).
"""
