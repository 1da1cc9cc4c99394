"""Export the network as two static graphs (encoder, head) for ONNX Runtime and OpenVINO; cached on disk.

One pair of graphs per (encoder, metric, weights, network input size): the encoder takes a batch of frames
(dynamic batch axis), the head one window of 32 frames of encoder features. Graphs are float32 with the
math attention formulation; mixed precision is the runtime's business (OpenVINO's inference precision hint).

    python -m vda.infer.export --encoder vits --input-size 518x924 --checkpoint random --out graphs/ [--format openvino]
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from vda.backends.cache import cached_build, write_manifest
from vda.backends.graphs import FEATURE_NAMES, EncoderGraph, HeadGraph, example_inputs
from vda.errors import InputShapeError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import VideoDepthAnything
from vda.registry import Registry

SCHEMA = 1  # bump when the layout of an entry changes
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MODEL_SOURCES = ("model/dinov2.py", "model/dpt.py", "model/temporal.py", "model/video_depth_anything.py",
                 "backends/graphs.py", "backends/export.py")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphFiles:
    """Paths of the two graphs of one entry."""

    folder: Path
    encoder: Path
    head: Path


OnnxSource = Callable[[], GraphFiles]


@dataclass(frozen=True)
class GraphFormat:
    """One on-disk format of the two graphs: its file names, the packages that produce it, how to write it.

    ``write(model, input_hw, folder, onnx)`` fills ``folder``; ``onnx()`` gives the ONNX graphs of the same
    model and size for a format converted from them.
    """

    files: tuple[str, str]
    packages: tuple[str, ...]
    write: Callable[[VideoDepthAnything, tuple[int, int], Path, OnnxSource], None]

    def at(self, folder: Path) -> GraphFiles:
        encoder, head = self.files
        return GraphFiles(folder, folder / encoder, folder / head)


GRAPH_FORMATS: Registry[GraphFormat] = Registry("graph format")


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes, bytes), the weights' identity in cache keys."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _source_digest() -> str:
    root = PACKAGE_ROOT
    digest = hashlib.sha256()
    for relative in MODEL_SOURCES:
        digest.update((root / relative).read_bytes())
    return digest.hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class GraphSource:
    """A network as the graph cache sees it: what its entries' keys hold, and the network itself, asked for
    only when an entry must be built (a runner that let its torch network go loads it again then)."""

    encoder_name: str
    metric: bool
    weights: str  # weights_digest of the network
    network: Callable[[], VideoDepthAnything]

    @classmethod
    def of(cls, model: VideoDepthAnything) -> "GraphSource":
        return cls(model.encoder_name, bool(model.metric), weights_digest(model), lambda: model)


def graph_key(model: VideoDepthAnything | GraphSource, input_hw: tuple[int, int], fmt: str) -> dict:
    """Everything the files of an entry depend on: network, weights, size, format and the producing libraries."""
    source = model if isinstance(model, GraphSource) else GraphSource.of(model)
    packages = GRAPH_FORMATS.get(fmt).packages
    return {
        "schema": SCHEMA,
        "format": fmt,
        "encoder": source.encoder_name,
        "metric": source.metric,
        "weights": source.weights,
        "input_hw": list(input_hw),
        "dtype": "fp32",
        "attention": "math",
        "versions": {name: _version(name) for name in packages} | {"vda": f"{_version('vda')}+{_source_digest()}"},
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
    options = model.attention.options
    model.attention.set("math")
    try:
        yield
    finally:
        model.attention.set(options)


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


GRAPH_FORMATS.register(
    "onnx",
    GraphFormat(("encoder.onnx", "head.onnx"), ("torch", "onnx", "onnxscript"),
                lambda model, input_hw, folder, onnx: export_onnx(model, input_hw, folder)),
    help="ONNX files (ONNX Runtime reads them)",
)


def cached_graphs(
    model: VideoDepthAnything | GraphSource, input_hw: tuple[int, int], fmt: str = "onnx", root: Path | None = None
) -> GraphFiles:
    """The graphs for ``model`` at network input ``input_hw``, from the cache (``$VDA_CACHE_DIR``) or built now
    (a :class:`GraphSource` is asked for its network only then)."""
    source = model if isinstance(model, GraphSource) else GraphSource.of(model)
    graph_format = GRAPH_FORMATS.get(fmt)
    check_input_size(input_hw)
    name = f"{source.encoder_name}{'-metric' if source.metric else ''}-{input_hw[0]}x{input_hw[1]}-{fmt}"

    def build(folder: Path) -> None:
        graph_format.write(source.network(), input_hw, folder, lambda: cached_graphs(source, input_hw, "onnx", root))

    return graph_format.at(cached_build(name, graph_key(source, input_hw, fmt), build, root))


def export_graphs(model: VideoDepthAnything, input_hw: tuple[int, int], out: Path, fmt: str = "onnx") -> GraphFiles:
    """Write the graphs of ``fmt`` into ``out`` (an entry with its manifest, usable as a cache root's entry)."""
    graph_format = GRAPH_FORMATS.get(fmt)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:

        def onnx() -> GraphFiles:
            export_onnx(model, input_hw, Path(staging))
            return GRAPH_FORMATS.get("onnx").at(Path(staging))

        graph_format.write(model, input_hw, out, onnx)
    write_manifest(out, graph_key(model, input_hw, fmt))
    return graph_format.at(out)


__all__ = ["GRAPH_FORMATS", "GraphFiles", "GraphFormat", "GraphSource", "cached_graphs", "check_input_size", "export_graphs", "export_onnx", "graph_key", "weights_digest"]
