"""The registry of runtime backends: one record per backend, looked up by name.

Built in: ``torch`` (eager, the default), ``compile`` (torch.compile), ``onnxruntime`` and ``openvino`` (the
exported float32 graphs). ``create(name, model, **options)`` checks that the backend can run on the model's
device and that the model's attention and precision suit it, then returns a runner
(:mod:`vda.backends.runners`). Rule for attention: it is a torch-side choice; ``torch`` and ``compile`` run
whatever the model was built with, the graph backends run the exported math formulation and accept a model
built with ``sdpa`` or ``math`` (the same numbers), refusing ``xformers``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from vda.backends.runners import (
    COMPILE_MODES,
    DEVICE_PROVIDERS,
    OPENVINO_DEVICES,
    CompiledRunner,
    OnnxRuntimeRunner,
    OpenVinoRunner,
    Runner,
)
from vda.errors import BackendUnavailableError, ConfigError
from vda.registry import Registry
from vda.model.video_depth_anything import VideoDepthAnything
from vda.runtime.device import torch_version
from vda.runtime.precision import Precision

GRAPH_ATTENTION = ("sdpa", "math")  # what a model must be built with to run as the exported graphs


@dataclass(frozen=True)
class Backend:
    """A runtime: ``factory(model, **options) -> runner``; ``options`` maps each option to one line of help."""

    factory: Callable[..., Runner]
    options: dict[str, str] = field(default_factory=dict)
    # The head runs whole 32-frame windows only (exported graphs): a model call takes exactly that many frames.
    whole_windows: bool = False
    # Its runner allocates device memory outside torch's allocator (ONNX Runtime, OpenVINO).
    foreign_memory: bool = False


BACKENDS: Registry[Backend] = Registry("backend")


def register_backend(
    name: str,
    factory: Callable[..., Runner],
    available: Optional[Callable[[torch.device], Optional[str]]] = None,
    options: Optional[dict[str, str]] = None,
    help: str = "",
    replace: bool = False,
    whole_windows: bool = False,
    foreign_memory: bool = False,
) -> Backend:
    """Add a runtime: ``factory(model, **options) -> runner``; ``available(device)`` says why it cannot run."""
    backend = Backend(factory, dict(options or {}), whole_windows, foreign_memory)
    return BACKENDS.register(name, backend, available, help, replace)


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)


def backend_status(name: str, device: torch.device | str) -> Optional[str]:
    """None when backend ``name`` can run on ``device``, else the one-line reason."""
    return BACKENDS.record(name).unavailable_reason(torch.device(device))


def create(name: str, model: VideoDepthAnything, **options) -> Runner:
    """A runner of ``model`` (built by :func:`vda.build_model`) on backend ``name`` with its options.

    Raises :class:`ConfigError` for an unknown backend or option, :class:`BackendUnavailableError` when the
    backend cannot run here or not with the model's attention/precision.
    """
    backend = get_backend(name)
    reason = backend_status(name, model.device)
    if reason is not None:
        raise BackendUnavailableError(reason)
    unknown = sorted(set(options) - set(backend.options))
    if unknown:
        allowed = ", ".join(backend.options) or "none"
        raise ConfigError(f"backend={name} has no option {', '.join(unknown)}; its options: {allowed}")
    return backend.factory(model, **options)


def _missing(backend: str, extra: str, modules: tuple[str, ...]) -> Optional[str]:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (
        f"backend={backend} needs the {', '.join(absent)} package{'s' if len(absent) > 1 else ''}, not installed; "
        f'pip install -e ".[{extra}]" or use backend=torch'
    )


def _check_graph_model(backend: str, model: VideoDepthAnything) -> None:
    if model.attention_name not in GRAPH_ATTENTION:
        raise BackendUnavailableError(
            f"backend={backend} runs the exported graph with math attention; attention={model.attention_name} "
            f"applies to backend=torch|compile only; use attention=sdpa or attention=math"
        )


# Inductor fails on this model on MPS before torch 2.8.
COMPILE_MPS_TORCH_FLOOR = (2, 8)


def _apple_clang() -> bool:
    """Whether ``c++`` is Apple's clang, which has no OpenMP of its own."""
    try:
        banner = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Apple clang" in banner


def _openmp_header_found() -> bool:
    """Whether an ``omp.h`` is where Inductor looks on macOS: $OMP_PREFIX, $CONDA_PREFIX, ``brew --prefix libomp``."""
    prefixes = [os.environ.get("OMP_PREFIX"), os.environ.get("CONDA_PREFIX")]
    brew = shutil.which("brew")
    if brew is not None:
        try:
            prefixes.append(subprocess.run([brew, "--prefix", "libomp"], capture_output=True, text=True, timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return any(p and os.path.isfile(os.path.join(p, "include", "omp.h")) for p in prefixes)


def _compile_available(device: torch.device) -> Optional[str]:
    if device.type == "mps" and torch_version(torch.__version__) < COMPILE_MPS_TORCH_FLOOR:
        floor = ".".join(map(str, COMPILE_MPS_TORCH_FLOOR))
        return (
            f"backend=compile on mps needs torch>={floor} (Inductor fails on this model on MPS before), "
            f"found {torch.__version__}; use backend=torch"
        )
    if device.type != "cpu":
        return None
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return (
            "backend=compile on cpu needs a C++ compiler (c++, g++ or clang++) on PATH; "
            "install one or use backend=torch"
        )
    if sys.platform == "darwin" and _apple_clang() and not _openmp_header_found():
        return (
            "backend=compile on cpu needs OpenMP, which Apple clang lacks; brew install libomp "
            "(or set OMP_PREFIX) or use backend=torch"
        )
    return None


def _onnxruntime_available(device: torch.device) -> Optional[str]:
    missing = _missing("onnxruntime", "onnxruntime", ("onnxruntime", "onnx", "onnxscript"))
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


def _openvino_available(device: torch.device) -> Optional[str]:
    return _missing("openvino", "openvino", ("openvino", "onnx", "onnxscript"))


def _make_torch(model: VideoDepthAnything) -> Runner:
    return Runner(model)


def _make_compile(model: VideoDepthAnything, mode: str = "default") -> Runner:
    return CompiledRunner(model, mode)


def default_providers(device: torch.device) -> list[str]:
    """The ONNX Runtime providers for ``device``: CUDA on cuda, CoreML on mps, then CPU."""
    wanted = DEVICE_PROVIDERS.get(device.type)
    return ([wanted] if wanted is not None else []) + ["CPUExecutionProvider"]


def _make_onnxruntime(model: VideoDepthAnything, providers: Optional[list[str]] = None) -> Runner:
    import onnxruntime as ort

    _check_graph_model("onnxruntime", model)
    if model.precision is not Precision.fp32:
        raise BackendUnavailableError(
            f"backend=onnxruntime runs the float32 graphs and has no mixed-precision switch; "
            f"precision={model.precision.value} is unavailable; use precision=fp32 or backend=openvino"
        )
    providers = list(providers) if providers else default_providers(model.device)
    absent = [p for p in providers if p not in ort.get_available_providers()]
    if absent:
        raise BackendUnavailableError(
            f"onnxruntime provider {', '.join(absent)} is not in this build "
            f"(available: {', '.join(ort.get_available_providers())}); choose among those"
        )
    return OnnxRuntimeRunner(model, providers)


def _make_openvino(model: VideoDepthAnything, device: str = "CPU") -> Runner:
    import openvino as ov

    _check_graph_model("openvino", model)
    if device not in OPENVINO_DEVICES:
        raise ConfigError(f"unknown openvino device {device!r}; choose one of {', '.join(OPENVINO_DEVICES)}")
    present = ov.Core().available_devices
    if device != "AUTO" and not any(d.split(".")[0] == device for d in present):
        raise BackendUnavailableError(
            f"openvino device {device} is not present here (found: {', '.join(present)}); use CPU or AUTO"
        )
    return OpenVinoRunner(model, device)


register_backend("torch", _make_torch, help="eager PyTorch (the default)")
register_backend(
    "compile",
    _make_compile,
    _compile_available,
    {"mode": f"torch.compile mode: {', '.join(COMPILE_MODES)} (default: default)"},
    help="torch.compile (inductor) of the encoder and head graphs",
)
register_backend(
    "onnxruntime",
    _make_onnxruntime,
    _onnxruntime_available,
    {"providers": "ONNX Runtime execution providers in order (default: CUDA on cuda, CoreML on mps, then CPU)"},
    help="ONNX Runtime on the exported float32 graphs (fp32 only)",
    whole_windows=True,
    foreign_memory=OnnxRuntimeRunner.foreign_memory,
)
register_backend(
    "openvino",
    _make_openvino,
    _openvino_available,
    {"device": f"OpenVINO device: {', '.join(OPENVINO_DEVICES)} (default: CPU)"},
    help="OpenVINO on the exported graphs; precision fp32/bf16/fp16 -> inference precision hint f32/bf16/f16",
    whole_windows=True,
    foreign_memory=OpenVinoRunner.foreign_memory,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "backend_status",
    "create",
    "default_providers",
    "get_backend",
    "register_backend",
]
