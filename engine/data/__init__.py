"""Data sets: the manifest format shared by training and evaluation, and its importers."""
