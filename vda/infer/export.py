"""Export the network as the two static graphs (encoder, head) of a format, into a folder.

    python -m vda.infer.export --encoder vits --input-size 518x924 --checkpoint random --out graphs/ [--format openvino]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vda.backends.export import GRAPH_FORMATS, export_graphs
from vda.config import EncoderConfig, ModelConfig
from vda.entry import EXIT_USAGE
from vda.errors import VDAError
from vda.factory import build_model
from vda.model import ENCODERS


def parse_size(text: str) -> tuple[int, int]:
    """``"518x924"`` -> (518, 924); a single number means a square input."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-size {text!r} is not HxW, e.g. 518x924") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"--input-size {text!r} is not HxW, e.g. 518x924")
    return parts[0], parts[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vda.infer.export", description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=EncoderConfig.name, help=ENCODERS.choices())
    parser.add_argument("--metric", action="store_true", help="the metric-depth network")
    parser.add_argument("--input-size", type=parse_size, required=True, help="network input HxW, multiples of 14")
    parser.add_argument("--checkpoint", default=ModelConfig.checkpoint, help="a .pth path, 'auto' (official download) or 'random'")
    parser.add_argument("--seed", type=int, default=ModelConfig.seed, help="seed of --checkpoint random")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the graphs into")
    parser.add_argument("--format", choices=GRAPH_FORMATS.names(), default="onnx", help="onnx files or OpenVINO IR")
    args = parser.parse_args(argv)
    try:
        model = build_model(args.encoder, args.metric, attention="math", checkpoint=args.checkpoint, seed=args.seed)
        files = export_graphs(model, args.input_size, args.out, args.format)
    except VDAError as exc:
        parser.exit(EXIT_USAGE, f"error: {exc}\n")
    print(f"{files.encoder}\n{files.head}")


if __name__ == "__main__":
    main()
