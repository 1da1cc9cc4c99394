"""Backend ``onnxruntime``: ONNX Runtime sessions over the exported float32 graphs (cached on disk)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from vda.backends.base import BackendConfig, check_graph_model, missing_packages, register_backend
from vda.backends.export import cached_graphs
from vda.backends.graphs import FEATURE_NAMES
from vda.backends.runners import GraphRunner, to_numpy
from vda.errors import BackendUnavailableError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import Features, VideoDepthAnything
from vda.runtime.precision import Precision


@dataclass
class OnnxRuntimeConfig(BackendConfig):
    name: str = "onnxruntime"
    # Execution providers in order; null: CUDA on cuda, CoreML on macOS, then CPU.
    providers: Optional[list[str]] = None


def default_providers(device: torch.device) -> list[str]:
    """The best ONNX Runtime providers for ``device``: CUDA on cuda, CoreML on macOS, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    preferred = ["CUDAExecutionProvider"] if device.type == "cuda" else []
    if sys.platform == "darwin":
        preferred.append("CoreMLExecutionProvider")
    return [p for p in preferred if p in available] + ["CPUExecutionProvider"]


class OnnxRuntimeRunner(GraphRunner):
    """ONNX Runtime sessions over the exported float32 graphs (cached on disk, see :mod:`vda.backends.export`)."""

    backend = "onnxruntime"

    def __init__(self, model: VideoDepthAnything, providers: Sequence[str]) -> None:
        super().__init__(model)
        self.providers = list(providers)

    @property
    def attention_name(self) -> str:
        return "math"  # the exported formulation

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        import onnxruntime as ort

        files = cached_graphs(self.model, (patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE), "onnx")
        return tuple(ort.InferenceSession(str(path), providers=self.providers) for path in (files.encoder, files.head))

    def run_encoder(self, session, frames: torch.Tensor) -> Features:
        outputs = session.run(list(FEATURE_NAMES), {"frames": to_numpy(frames)})
        return tuple(torch.from_numpy(o).to(self.device) for o in outputs)

    def run_head(self, session, features: Features) -> torch.Tensor:
        feeds = {name: to_numpy(f) for name, f in zip(FEATURE_NAMES, features, strict=True)}
        return torch.from_numpy(session.run(["depth"], feeds)[0]).to(self.device)


def _available(device: torch.device) -> Optional[str]:
    missing = missing_packages("onnxruntime", "onnxruntime", ("onnxruntime", "onnx", "onnxscript"))
    if missing is not None:
        return missing
    import onnxruntime as ort

    if device.type == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            "backend=onnxruntime on cuda needs the CUDAExecutionProvider, absent from this onnxruntime build; "
            "pip install onnxruntime-gpu or use device=cpu"
        )
    return None


def _make(model: VideoDepthAnything, options: OnnxRuntimeConfig) -> OnnxRuntimeRunner:
    import onnxruntime as ort

    check_graph_model("onnxruntime", model)
    if model.precision is not Precision.fp32:
        raise BackendUnavailableError(
            f"backend=onnxruntime runs the float32 graphs and has no mixed-precision switch; "
            f"precision={model.precision.value} is unavailable; use precision=fp32 or backend=openvino"
        )
    providers = list(options.providers) if options.providers else default_providers(model.device)
    absent = [p for p in providers if p not in ort.get_available_providers()]
    if absent:
        raise BackendUnavailableError(
            f"onnxruntime provider {', '.join(absent)} is not in this build "
            f"(available: {', '.join(ort.get_available_providers())}); choose among those"
        )
    return OnnxRuntimeRunner(model, providers)


register_backend(
    "onnxruntime",
    _make,
    _available,
    OnnxRuntimeConfig,
    help="ONNX Runtime on the exported float32 graphs (fp32 only)",
    whole_windows=True,
)

__all__ = ["OnnxRuntimeConfig", "OnnxRuntimeRunner", "default_providers"]
