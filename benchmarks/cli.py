"""Command-line options shared by the benchmark scripts' ``__main__`` figure runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from vda.depth.settings import InferSettings
from vda.factory import build_model
from vda.runtime.device import resolve_device
from vda.video import VideoReader, probe


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
    parser.add_argument("--max-res", type=int, default=InferSettings.max_res)
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=precision)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser


def report_header(args, clip, frames: int, info, device) -> dict:
    """The settings every figure run reports first: the clip, its size, and what ran on it."""
    return {
        "clip": str(clip),
        "frames": frames,
        "frame_size": f"{info.width}x{info.height}",
        "input_size": args.input_size,
        "encoder": args.encoder,
        "device": str(device),
        "precision": args.precision,
        "repeats": args.repeats,
    }


def load_clip(args, clip):
    """``(device, model, info, frames)``: seeded random weights on ``args.device`` and the clip's decoded frames."""
    device = resolve_device(args.device)
    model = build_model(args.encoder, device=device, precision=args.precision, checkpoint="random")
    info = probe(clip, max_res=args.max_res, max_len=args.frames)
    return device, model, info, list(VideoReader(info))
