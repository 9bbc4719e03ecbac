"""Neural models: each in one readable file with a builder, a loader and a tiny variant."""
