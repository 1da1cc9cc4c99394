"""Backend ``onnxruntime``: ONNX Runtime sessions over the exported float32 graphs (cached on disk)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from vda.backends.base import BackendConfig, check_graph_model, missing_packages, register_backend
from vda.backends.export import cached_graphs
from vda.backends.graphs import FEATURE_NAMES
from vda.backends.runners import GraphRunner
from vda.errors import BackendUnavailableError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import Features, VideoDepthAnything
from vda.runtime.device import synchronize
from vda.runtime.precision import Precision

# The ONNX Runtime provider that runs on each accelerator device type (cpu: the CPU provider alone). CoreML only
# for device=mps: with its default compute units it may run on the Neural Engine in fp16, which is no "fp32 cpu".
DEVICE_PROVIDERS = {"cuda": "CUDAExecutionProvider", "mps": "CoreMLExecutionProvider"}
# CoreML compute units for the float32 graphs: CPU and GPU (the Neural Engine computes in fp16 only).
COREML_FP32_UNITS = "CPUAndGPU"


@dataclass
class OnnxRuntimeConfig(BackendConfig):
    name: str = "onnxruntime"
    # Execution providers in order; null: CUDA on cuda, CoreML on mps, then CPU.
    providers: Optional[list[str]] = None


def default_providers(device: torch.device) -> list[str]:
    """The ONNX Runtime providers for ``device``: CUDA on cuda, CoreML on mps, then CPU."""
    wanted = DEVICE_PROVIDERS.get(device.type)
    return ([wanted] if wanted is not None else []) + ["CPUExecutionProvider"]


def provider_options(providers: Sequence[str], device: torch.device) -> list:
    """``providers`` with the options that tie them to ``device``: the CUDA provider on the model's GPU
    (``cuda:i``, not GPU 0 whatever the model's), CoreML on the CPU and GPU compute units (float32)."""

    def options(provider: str) -> Optional[dict]:
        if provider == "CUDAExecutionProvider" and device.type == "cuda":
            return {"device_id": device.index if device.index is not None else torch.cuda.current_device()}
        if provider == "CoreMLExecutionProvider":
            return {"MLComputeUnits": COREML_FP32_UNITS}
        return None

    return [(p, options(p)) if options(p) is not None else p for p in providers]


class OnnxRuntimeRunner(GraphRunner):
    """ONNX Runtime sessions over the exported float32 graphs (cached on disk, see :mod:`vda.backends.export`)."""

    backend = "onnxruntime"
    foreign_memory = True
    releases_network = True

    def __init__(self, model: VideoDepthAnything, providers: Sequence[str]) -> None:
        super().__init__(model)
        self.providers = list(providers)

    @property
    def attention_name(self) -> str:
        return "math"  # the exported formulation

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        files = cached_graphs(self.source(), (patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE), "onnx")
        return tuple((self.session(path), patch_hw) for path in (files.encoder, files.head))

    @staticmethod
    def session_options() -> "onnxruntime.SessionOptions":
        """torch's thread count (a dataset worker's share; ONNX Runtime alone would take every core) and no memory
        arena: the arena keeps the largest activations it served for the life of the session, beside torch's."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        return options

    def session(self, path) -> "onnxruntime.InferenceSession":
        """A session on the requested providers, refused when one did not start (ONNX Runtime falls back to the
        CPU provider silently, and the run would be labelled with a device it did not use)."""
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), sess_options=self.session_options(),
                                       providers=provider_options(self.providers, self.device))
        running = session.get_providers()
        missing = [p for p in self.providers if p not in running]
        if missing:
            raise BackendUnavailableError(
                f"onnxruntime could not start {', '.join(missing)} (running: {', '.join(running)}); "
                "check the onnxruntime build and its CUDA/CoreML libraries, or use providers=[CPUExecutionProvider]"
            )
        return session

    def _run(self, graph, inputs: dict[str, torch.Tensor], outputs: dict[str, tuple[int, ...]]) -> list[torch.Tensor]:
        """Run with IO binding: inputs read and outputs written in place on the model's device (no host copies)."""
        session, _ = graph
        device = self.device
        on_gpu = device.type == "cuda" and "CUDAExecutionProvider" in self.providers
        kind, index = ("cuda", device.index if device.index is not None else torch.cuda.current_device()) if on_gpu else ("cpu", 0)
        binding = session.io_binding()
        held = {name: t.detach().to(torch.float32).contiguous() for name, t in inputs.items()}
        if not on_gpu:
            held = {name: t.cpu() for name, t in held.items()}
        for name, tensor in held.items():
            binding.bind_input(name, kind, index, np.float32, tuple(tensor.shape), tensor.data_ptr())
        results = {name: torch.empty(shape, dtype=torch.float32, device=device if on_gpu else "cpu")
                   for name, shape in outputs.items()}
        for name, tensor in results.items():
            binding.bind_output(name, kind, index, np.float32, tuple(tensor.shape), tensor.data_ptr())
        synchronize(device)  # the inputs were written on torch's stream; ONNX Runtime reads them on its own
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return [results[name].to(device) for name in outputs]

    def run_encoder(self, graph, frames: torch.Tensor) -> Features:
        _, (rows, cols) = graph
        shape = (frames.shape[0], rows * cols, self.facts.token_dim)
        return tuple(self._run(graph, {"frames": frames}, {name: shape for name in FEATURE_NAMES}))

    def run_head(self, graph, features: Features) -> torch.Tensor:
        _, (rows, cols) = graph
        shape = (features[0].shape[0], rows * PATCH_SIZE, cols * PATCH_SIZE)
        return self._run(graph, dict(zip(FEATURE_NAMES, features, strict=True)), {"depth": shape})[0]


def _available(device: torch.device) -> Optional[str]:
    missing = missing_packages("onnxruntime", "onnxruntime", ("onnxruntime", "onnx", "onnxscript"))
    if missing is not None:
        return missing
    import onnxruntime as ort

    wanted = DEVICE_PROVIDERS.get(device.type)
    if wanted is not None and wanted not in ort.get_available_providers():
        package = "onnxruntime-gpu" if device.type == "cuda" else "onnxruntime (a build with CoreML)"
        return (
            f"backend=onnxruntime on {device.type} needs the {wanted}, absent from this onnxruntime build; "
            f"pip install {package} or use device=cpu"
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
    foreign_memory=OnnxRuntimeRunner.foreign_memory,
)

__all__ = [
    "COREML_FP32_UNITS",
    "DEVICE_PROVIDERS",
    "OnnxRuntimeConfig",
    "OnnxRuntimeRunner",
    "default_providers",
    "provider_options",
]
