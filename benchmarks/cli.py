"""Command-line options shared by the benchmark scripts' ``__main__`` figure runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def clip_parser(description: str, frames: int, size: tuple[int, int], input_size: int, precision: str, repeats: int):
    """A parser with the options of a run over a clip: ``--video``, ``--frames``, ``--width``/``--height`` of the
    generated clip, ``--input-size``, ``--max-res``, ``--encoder``, ``--device``, ``--precision``, ``--repeats``,
    ``--json``; each script adds its own."""
    width, height = size
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--video", type=Path, help="clip to use (default: a synthetic one)")
    parser.add_argument("--frames", type=int, default=frames, help="frames of the timed runs")
    parser.add_argument("--width", type=int, default=width)
    parser.add_argument("--height", type=int, default=height)
    parser.add_argument("--input-size", type=int, default=input_size)
    parser.add_argument("--max-res", type=int, default=1280)
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=precision)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser
