"""Export the shipped musicnn checkpoints to ONNX (``engine/weights/musicnn/<name>.onnx``).

The lite tagger runs these files in ONNX Runtime (about 2x faster than PyTorch on 2 cores,
and the process never imports torch); each file records the SHA-256 of the ``.safetensors``
it came from, so rerun this after converting new weights. Needs ``pip install onnx``.

Usage::

    python scripts/export_musicnn_onnx.py [name_or_path ...]
"""

from __future__ import annotations

import argparse

from engine.models.musicnn import PRETRAINED, export_onnx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(PRETRAINED))
    for name in parser.parse_args().models:
        print(export_onnx(name))


if __name__ == "__main__":
    main()
