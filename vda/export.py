"""Export the network as two static graphs (encoder, head) for ONNX Runtime and OpenVINO; cached on disk.

One pair of graphs per (encoder, metric, weights, network input size): the encoder takes a batch of frames
(dynamic batch axis), the head one window of 32 frames of encoder features. Graphs are float32 with the
math attention formulation; mixed precision is the runtime's business (OpenVINO's inference precision hint).

    python -m vda.export --encoder vits --input-size 518x924 --checkpoint random --out graphs/ [--format openvino]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

import vda
from vda.backends.cache import cached_build
from vda.backends.graphs import FEATURE_NAMES, EncoderGraph, HeadGraph, example_inputs
from vda.errors import ConfigError, InputShapeError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import VideoDepthAnything

FORMATS = ("onnx", "openvino")
GRAPH_FILES = {"onnx": ("encoder.onnx", "head.onnx"), "openvino": ("encoder.xml", "head.xml")}
SCHEMA = 1  # bump when the layout of an entry changes
MODEL_SOURCES = ("model/dinov2.py", "model/dpt.py", "model/temporal.py", "model/video_depth_anything.py",
                 "backends/graphs.py", "export.py")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphFiles:
    """Paths of the two graphs of one entry."""

    folder: Path
    encoder: Path
    head: Path


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes, bytes), the weights' identity in cache keys."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _source_digest() -> str:
    root = Path(vda.__file__).parent
    digest = hashlib.sha256()
    for relative in MODEL_SOURCES:
        digest.update((root / relative).read_bytes())
    return digest.hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def graph_key(model: VideoDepthAnything, input_hw: tuple[int, int], fmt: str) -> dict:
    """Everything the files of an entry depend on: network, weights, size, format and the producing libraries."""
    packages = ["torch", "onnx", "onnxscript"] + (["openvino"] if fmt == "openvino" else [])
    return {
        "schema": SCHEMA,
        "format": fmt,
        "encoder": model.encoder_name,
        "metric": bool(model.metric),
        "weights": weights_digest(model),
        "input_hw": list(input_hw),
        "dtype": "fp32",
        "attention": "math",
        "versions": {name: _version(name) for name in packages} | {"vda": f"{vda.__version__}+{_source_digest()}"},
    }


def check_input_size(input_hw: tuple[int, int]) -> tuple[int, int]:
    """``(h, w)`` of the network input -> the patch grid; both sides must be positive multiples of 14."""
    h, w = input_hw
    if h <= 0 or w <= 0 or h % PATCH_SIZE or w % PATCH_SIZE:
        raise InputShapeError(f"network input size {h}x{w} is not a multiple of {PATCH_SIZE}; use e.g. 518x924")
    return h // PATCH_SIZE, w // PATCH_SIZE


@contextlib.contextmanager
def math_attention(model: VideoDepthAnything) -> Iterator[None]:
    """Trace with the explicit matmul-softmax attention (portable ONNX), restoring the model's choice after."""
    name, kernel = model.attention.name, model.attention.sdpa_kernel
    model.attention.set("math")
    try:
        yield
    finally:
        model.attention.set(name, kernel)


def export_onnx(model: VideoDepthAnything, input_hw: tuple[int, int], folder: Path) -> None:
    """Write ``encoder.onnx`` and ``head.onnx`` (with any external-data files) for one network input size."""
    patch_hw = check_input_size(input_hw)
    logger.info("exporting %s encoder and head graphs at %dx%d to %s", model.encoder_name, *input_hw, folder)
    frames, features = example_inputs(model, patch_hw)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with math_attention(model), torch.no_grad():
        torch.onnx.export(
            EncoderGraph(model, patch_hw).eval(),
            (frames,),
            str(folder / "encoder.onnx"),
            input_names=["frames"],
            output_names=list(FEATURE_NAMES),
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=True,
            verbose=False,
        )
        torch.onnx.export(
            HeadGraph(model, patch_hw).eval(),
            features,
            str(folder / "head.onnx"),
            input_names=list(FEATURE_NAMES),
            output_names=["depth"],
            dynamo=True,
            external_data=True,
            verbose=False,
        )


def convert_openvino(onnx: GraphFiles, folder: Path) -> None:
    """ONNX graphs -> OpenVINO IR (``encoder.xml/.bin``, ``head.xml/.bin``), weights kept in float32."""
    import openvino as ov

    for source, name in ((onnx.encoder, "encoder"), (onnx.head, "head")):
        ov.save_model(ov.convert_model(str(source)), str(folder / f"{name}.xml"), compress_to_fp16=False)


def _files(folder: Path, fmt: str) -> GraphFiles:
    encoder, head = GRAPH_FILES[fmt]
    return GraphFiles(folder, folder / encoder, folder / head)


def cached_graphs(
    model: VideoDepthAnything, input_hw: tuple[int, int], fmt: str = "onnx", root: Path | None = None
) -> GraphFiles:
    """The graphs for ``model`` at network input ``input_hw``, from the cache (``$VDA_CACHE_DIR``) or built now."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_input_size(input_hw)
    name = f"{model.encoder_name}{'-metric' if model.metric else ''}-{input_hw[0]}x{input_hw[1]}-{fmt}"
    if fmt == "onnx":
        build = lambda folder: export_onnx(model, input_hw, folder)  # noqa: E731
    else:
        onnx = cached_graphs(model, input_hw, "onnx", root)
        build = lambda folder: convert_openvino(onnx, folder)  # noqa: E731
    return _files(cached_build(name, graph_key(model, input_hw, fmt), build, root), fmt)


def export_graphs(model: VideoDepthAnything, input_hw: tuple[int, int], out: Path, fmt: str = "onnx") -> GraphFiles:
    """Write the graphs of ``fmt`` into ``out`` (an entry with its manifest, usable as a cache root's entry)."""
    from vda.backends.cache import write_manifest

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        export_onnx(model, input_hw, out)
    elif fmt == "openvino":
        with tempfile.TemporaryDirectory() as staging:
            export_onnx(model, input_hw, Path(staging))
            convert_openvino(_files(Path(staging), "onnx"), out)
    else:
        raise ConfigError(f"unknown graph format {fmt!r}; choose one of {', '.join(FORMATS)}")
    write_manifest(out, graph_key(model, input_hw, fmt))
    return _files(out, fmt)


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
    from vda.cli import EXIT_USAGE
    from vda.errors import VDAError
    from vda import build_model

    parser = argparse.ArgumentParser(prog="python -m vda.export", description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="vits", help="vits, vitb or vitl")
    parser.add_argument("--metric", action="store_true", help="the metric-depth network")
    parser.add_argument("--input-size", type=parse_size, required=True, help="network input HxW, multiples of 14")
    parser.add_argument("--checkpoint", default="auto", help="a .pth path, 'auto' (official download) or 'random'")
    parser.add_argument("--seed", type=int, default=0, help="seed of --checkpoint random")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the graphs into")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="onnx files or OpenVINO IR")
    args = parser.parse_args(argv)
    try:
        model = build_model(args.encoder, args.metric, attention="math", checkpoint=args.checkpoint, seed=args.seed)
        files = export_graphs(model, args.input_size, args.out, args.format)
    except VDAError as exc:
        parser.exit(EXIT_USAGE, f"error: {exc}\n")
    print(f"{files.encoder}\n{files.head}")


if __name__ == "__main__":
    main()
