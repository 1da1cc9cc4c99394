"""Runners: a built torch network behind one runtime, with the interface the offline engine uses.

Every runner offers ``encode(frames [N, 3, H, W]) -> 4 token maps``, ``decode(features, batch, frames,
patch_hw) -> depth [B, T, H, W] float32``, ``forward``/``__call__`` on ``[B, T, 3, H, W]`` and the attributes
``device``, ``metric``, ``precision``, ``encoder_name``, ``attention_name``, so that
:class:`vda.pipeline.WindowedDepth` takes one unchanged. Graph runners build their graphs on the first call
at a new network input size; ``build_s`` accumulates the seconds spent building (export, conversion,
compilation, session creation; for ``compile`` the first call of each graph, one run included).
"""

from __future__ import annotations

import abc
import time
from typing import Optional, Sequence

import numpy as np
import torch

from vda.backends.graphs import FEATURE_NAMES, EncoderGraph, HeadGraph
from vda.errors import BackendUnavailableError, ConfigError, InputShapeError, NonFiniteOutputError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import Features, VideoDepthAnything, check_frames, check_window_length
from vda.pipeline.windows import WINDOW
from vda.runtime.device import synchronize
from vda.runtime.precision import Precision, autocast

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
OPENVINO_DEVICES = ("CPU", "GPU", "AUTO")
OPENVINO_PRECISION_HINTS = {Precision.fp32: "f32", Precision.bf16: "bf16", Precision.fp16: "f16"}
# The ONNX Runtime provider that runs on each accelerator device type (cpu: the CPU provider alone). CoreML only
# for device=mps: with its default compute units it may run on the Neural Engine in fp16, which is no "fp32 cpu".
DEVICE_PROVIDERS = {"cuda": "CUDAExecutionProvider", "mps": "CoreMLExecutionProvider"}
# CoreML compute units for the float32 graphs: CPU and GPU (the Neural Engine computes in fp16 only).
COREML_FP32_UNITS = "CPUAndGPU"


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


class Runner:
    """Base runner: the torch network run eagerly (backend ``torch``)."""

    backend = "torch"
    # Allocates device memory outside torch's allocator (its figures are then invisible to torch's counters).
    foreign_memory = False

    def __init__(self, model: VideoDepthAnything) -> None:
        self.model = model
        self.build_s = 0.0

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def metric(self) -> bool:
        return self.model.metric

    @property
    def precision(self) -> Precision:
        return self.model.precision

    @property
    def encoder_name(self) -> str:
        return self.model.encoder_name

    @property
    def attention_name(self) -> str:
        return self.model.attention_name

    @property
    def head(self):
        """The network's head (its micro-batch shrinks on out-of-memory); None where graphs run instead."""
        return self.model.head

    def encode(self, frames: torch.Tensor, precision: Optional[Precision] = None) -> Features:
        return self.model.encode(frames, precision)

    def decode(self, features: Features, batch: int, frames: int, patch_hw: tuple[int, int], **options) -> torch.Tensor:
        """As :meth:`VideoDepthAnything.decode` (``stream=``, ``precision=`` included)."""
        return self.model.decode(features, batch, frames, patch_hw, **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames [B, T, 3, H, W] -> depth [B, T, H, W] float32."""
        if x.ndim != 5:
            raise InputShapeError(f"expected frames [B, T, 3, H, W], got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        check_window_length(t)
        features = self.encode(x.flatten(0, 1))
        return self.decode(features, b, t, (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE))

    __call__ = forward

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.encoder_name}, {self.precision.value}, {self.device})"


class GraphRunner(Runner, abc.ABC):
    """Runs the encoder and head graphs built per network input size; subclasses say how to build and call."""

    def __init__(self, model: VideoDepthAnything) -> None:
        super().__init__(model)
        self.graphs: dict[tuple[int, int], tuple] = {}  # patch grid -> (encoder, head)

    def _graphs_for(self, patch_hw: tuple[int, int]) -> tuple:
        if patch_hw not in self.graphs:
            start = time.perf_counter()
            self.graphs[patch_hw] = self.build(patch_hw)
            self.build_s += time.perf_counter() - start
        return self.graphs[patch_hw]

    @abc.abstractmethod
    def build(self, patch_hw: tuple[int, int]) -> tuple:
        """The (encoder, head) graphs for one patch grid."""

    @abc.abstractmethod
    def run_encoder(self, graph, frames: torch.Tensor) -> Features:
        """Frames [N, 3, H, W] -> four token maps [N, ph*pw, D] on the runner's device."""

    @abc.abstractmethod
    def run_head(self, graph, features: Features) -> torch.Tensor:
        """Features of one window, each [T, ph*pw, D] -> depth [T, H, W] float32."""

    @property
    def head(self):
        return None

    def _check_precision(self, precision: Optional[Precision]) -> None:
        """The graphs run at the runner's precision only: the float32 retry of a NaN/inf window cannot run here."""
        if precision is not None and precision is not self.precision:
            raise NonFiniteOutputError(
                f"backend={self.backend} produced NaN/inf in {self.precision.value} and cannot recompute the window "
                f"in {precision.value}; run with precision=fp32"
            )

    def encode(self, frames: torch.Tensor, precision: Optional[Precision] = None) -> Features:
        """Frames [N, 3, H, W] -> four token maps [N, ph*pw, D] (float32)."""
        self._check_precision(precision)
        check_frames(frames)
        encoder, _ = self._graphs_for((frames.shape[-2] // PATCH_SIZE, frames.shape[-1] // PATCH_SIZE))
        return self.run_encoder(encoder, frames)

    def decode(self, features: Features, batch: int, frames: int, patch_hw: tuple[int, int], **options) -> torch.Tensor:
        """Token maps [B*T, ph*pw, D] (b-major) -> depth [B, T, ph*14, pw*14] float32; T must be the window.

        ``stream=`` (one frame at a time) cannot run on graphs; ``precision=`` only at the runner's precision.
        """
        stream, precision = options.pop("stream", None), options.pop("precision", None)
        if options:
            raise TypeError(f"decode() got unexpected options {sorted(options)}")
        if stream is not None:
            raise BackendUnavailableError(
                f"backend={self.backend} runs the head on whole windows; mode=stream needs backend=torch"
            )
        self._check_precision(precision)
        check_window_length(frames)
        if frames != WINDOW:
            raise InputShapeError(
                f"backend={self.backend} runs the head on whole windows of {WINDOW} frames, got T={frames}; "
                "pad the window or use backend=torch"
            )
        _, head = self._graphs_for(tuple(patch_hw))
        depth = torch.stack([self.run_head(head, tuple(f[b * frames : (b + 1) * frames] for f in features))
                             for b in range(batch)])  # [B, T, H, W]
        if not torch.isfinite(depth).all():
            raise NonFiniteOutputError(
                f"backend={self.backend} produced NaN/inf depth in {self.precision.value}; run with precision=fp32"
            )
        return depth


class CompiledRunner(GraphRunner):
    """``torch.compile`` of the encoder and head graphs (positional table constant), under the model's autocast."""

    backend = "compile"

    def __init__(self, model: VideoDepthAnything, mode: str = "default") -> None:
        if mode not in COMPILE_MODES:
            raise ConfigError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
        super().__init__(model)
        self.mode = mode
        self.first_calls: set[tuple[str, tuple[int, int]]] = set()

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        mode = None if self.mode == "default" else self.mode
        return tuple(
            (torch.compile(graph(self.model, patch_hw).eval(), mode=mode), kind, patch_hw)
            for graph, kind in ((EncoderGraph, "encoder"), (HeadGraph, "head"))
        )

    def _call(self, graph, *inputs: torch.Tensor):
        module, kind, patch_hw = graph
        start = time.perf_counter()
        with autocast(self.device, self.precision):
            out = module(*inputs)
        if (kind, patch_hw) not in self.first_calls:  # compilation happens in the first call
            self.first_calls.add((kind, patch_hw))
            self.build_s += time.perf_counter() - start
        return out

    def run_encoder(self, graph, frames: torch.Tensor) -> Features:
        return tuple(self._call(graph, frames))

    def run_head(self, graph, features: Features) -> torch.Tensor:
        return self._call(graph, *features).float()


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxRuntimeRunner(GraphRunner):
    """ONNX Runtime sessions over the exported float32 graphs (cached on disk, see :mod:`vda.export`)."""

    backend = "onnxruntime"
    foreign_memory = True

    def __init__(self, model: VideoDepthAnything, providers: Sequence[str]) -> None:
        super().__init__(model)
        self.providers = list(providers)

    @property
    def attention_name(self) -> str:
        return "math"  # the exported formulation

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        from vda.export import cached_graphs

        files = cached_graphs(self.model, (patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE), "onnx")
        return tuple((self.session(path), patch_hw) for path in (files.encoder, files.head))

    def session(self, path) -> "onnxruntime.InferenceSession":
        """A session on the requested providers, refused when one did not start (ONNX Runtime falls back to the
        CPU provider silently, and the run would be labelled with a device it did not use)."""
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=provider_options(self.providers, self.device))
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
        if kind == "cpu":
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
        dim = self.model.pretrained.cls_token.shape[-1]
        shape = (frames.shape[0], rows * cols, dim)
        return tuple(self._run(graph, {"frames": frames}, {name: shape for name in FEATURE_NAMES}))

    def run_head(self, graph, features: Features) -> torch.Tensor:
        _, (rows, cols) = graph
        shape = (features[0].shape[0], rows * PATCH_SIZE, cols * PATCH_SIZE)
        return self._run(graph, dict(zip(FEATURE_NAMES, features, strict=True)), {"depth": shape})[0]


class OpenVinoRunner(GraphRunner):
    """OpenVINO compiled models over the IR of the exported graphs; precision via the inference precision hint."""

    backend = "openvino"
    foreign_memory = True

    def __init__(self, model: VideoDepthAnything, device: str = "CPU") -> None:
        super().__init__(model)
        self.ov_device = device
        self.hint = OPENVINO_PRECISION_HINTS[model.precision]

    @property
    def attention_name(self) -> str:
        return "math"  # the exported formulation

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        import openvino as ov

        from vda.export import cached_graphs

        files = cached_graphs(self.model, (patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE), "openvino")
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": self.hint}
        return tuple(self.checked(core.compile_model(str(path), self.ov_device, config)) for path in (files.encoder, files.head))

    def checked(self, compiled):
        """``compiled``, refused when OpenVINO chose another inference precision than the hint (hardware without
        bf16/f16 runs f32, or bf16 for f16): the run would be labelled with a precision that did not run."""
        used = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if used != self.hint:
            names = {hint: p.value for p, hint in OPENVINO_PRECISION_HINTS.items()}
            runs = f"precision={names[used]}" if used in names else f"{used} only"
            raise BackendUnavailableError(
                f"openvino on {self.ov_device} runs {used}, not {self.hint}, for precision={self.precision.value} "
                f"on this hardware; use {runs}"
            )
        return compiled

    def run_encoder(self, compiled, frames: torch.Tensor) -> Features:
        outputs = compiled(_to_numpy(frames))
        return tuple(torch.from_numpy(np.asarray(outputs[compiled.output(i)])).to(self.device)
                     for i in range(len(FEATURE_NAMES)))

    def run_head(self, compiled, features: Features) -> torch.Tensor:
        outputs = compiled([_to_numpy(f) for f in features])
        return torch.from_numpy(np.asarray(outputs[compiled.output(0)])).to(self.device)


__all__ = [
    "COMPILE_MODES",
    "COREML_FP32_UNITS",
    "DEVICE_PROVIDERS",
    "OPENVINO_DEVICES",
    "CompiledRunner",
    "GraphRunner",
    "OnnxRuntimeRunner",
    "OpenVinoRunner",
    "Runner",
    "provider_options",
]
