"""The one assembler: a resolved config -> the runner it asks for (the network on its runtime, behind its backend).

:func:`assemble` is what ``run_infer.py`` (one video and dataset workers), every benchmark scenario and
:func:`build_model` call. :func:`resolve_runtime` turns the user's device/precision/attention names into a
checked :class:`Runtime` (once, by the caller that needs it before the model, or by :func:`assemble`);
:func:`create_model` builds the network for a resolved runtime without resolving anything again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from vda.attention import AttentionConfig, check_attention
from vda.attention import attention_options as attention_options_for
from vda.attention.implementations import Choice
from vda.backends import BACKENDS, BackendConfig, GraphRunner, check_backend, options_for, run_on
from vda.config import DeviceConfig, EncoderConfig, ModelConfig, PrecisionConfig, RunConfig
from vda.depth.modes import MODES
from vda.errors import BackendUnavailableError
from vda.model import VideoDepthAnything
from vda.runtime.device import resolve_device
from vda.runtime.precision import Precision, resolve_precision
from vda.weights import load_checkpoint


@dataclass(frozen=True)
class Runtime:
    """Where and how the network runs, resolved and checked."""

    device: torch.device
    precision: Precision
    attention: AttentionConfig = field(default_factory=AttentionConfig)


def resolve_runtime(
    device: str | torch.device = DeviceConfig.name,
    precision: str | Precision = PrecisionConfig.name,
    attention: Choice = AttentionConfig.name,
) -> Runtime:
    """Resolve ``auto`` choices and check that the combination can run here (one-line errors otherwise);
    ``attention``: a name (default options) or its options record."""
    torch_device = resolve_device(device)
    resolved = resolve_precision(precision, torch_device)
    return Runtime(torch_device, resolved, check_attention(attention, torch_device, resolved.value))


def runtime_for(cfg: RunConfig) -> Runtime:
    """The checked runtime of ``cfg`` (device, precision, attention) with its backend checked on that device."""
    runtime = resolve_runtime(cfg.device.name, cfg.precision.name, cfg.attention)
    check_backend(cfg.backend.name, runtime.device)
    return runtime


def create_model(
    runtime: Runtime,
    encoder: str = EncoderConfig.name,
    metric: bool = ModelConfig.metric,
    checkpoint: Optional[str | os.PathLike] = None,
    seed: int = ModelConfig.seed,
) -> VideoDepthAnything:
    """The network in eval mode on ``runtime.device``.

    ``checkpoint``: None keeps the fresh initialisation; "auto" downloads the official file; "random" loads
    seeded random weights; anything else is a path to a ``.pth`` state dict.
    """
    model = VideoDepthAnything(encoder, metric, runtime.attention, runtime.precision)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, seed)
    return model.to(runtime.device).eval()


def assemble(cfg: RunConfig, runtime: Optional[Runtime] = None) -> Any:
    """The runner ``cfg`` asks for: its network on ``runtime`` (default: :func:`runtime_for` ``cfg``), behind
    ``cfg.backend`` (the network itself on the default eager backend). A graph runner may load the network
    again from the checkpoint (it lets it go once its graphs are built, see :class:`vda.backends.GraphRunner`)."""
    runtime = runtime if runtime is not None else runtime_for(cfg)
    check_backend(cfg.backend.name, runtime.device)

    def load() -> VideoDepthAnything:
        return create_model(runtime, cfg.encoder.name, cfg.model.metric, cfg.model.checkpoint, cfg.model.seed)

    runner = run_on(cfg.backend, load())
    if isinstance(runner, GraphRunner) and cfg.model.checkpoint is not None:  # a fresh initialisation is not reloadable
        runner.reload_with(load)
    return runner


def check_mode_backend(mode: str, backend: str) -> None:
    """Refuse, in one line, a backend that cannot run ``mode`` (a frame-by-frame mode needs a backend that steps)."""
    if MODES.get(mode).frame_by_frame and not BACKENDS.get(backend).steps_frames:
        stepping = ", ".join(record.name for record in BACKENDS.records() if record.value.steps_frames)
        raise BackendUnavailableError(
            f"mode={mode} steps the network one frame at a time; backend={backend} runs whole windows only: "
            f"use backend={stepping}"
        )


def build_model(
    encoder: str = EncoderConfig.name,
    metric: bool = ModelConfig.metric,
    attention: str = AttentionConfig.name,
    attention_options: Optional[dict] = None,
    device: str | torch.device = DeviceConfig.name,
    precision: str | Precision = PrecisionConfig.name,
    checkpoint: Optional[str | os.PathLike] = ModelConfig.checkpoint,
    seed: int = ModelConfig.seed,
    backend: str = BackendConfig.name,
    backend_options: Optional[dict] = None,
):
    """Build the network, checking every choice before any work (the Python face of :func:`assemble`).

    ``device="auto"``: cuda > mps > cpu; ``precision="auto"``: the device's choice (fp16 on cuda, fp32
    elsewhere); ``checkpoint``: "auto" (the official file, downloaded once), "random" (seeded test weights),
    a ``.pth`` path, or None (fresh initialisation); ``attention_options``: the implementation's options (e.g.
    ``{"kernel": "flash"}`` for sdpa). ``backend``: ``torch`` returns the network itself; another
    runtime (``compile``, ``onnxruntime``, ``openvino``, see :mod:`vda.backends`) returns a runner of it with
    the same ``encode``/``decode``/``__call__`` interface, configured by ``backend_options``.
    """
    cfg = RunConfig(
        encoder=EncoderConfig(encoder),
        device=DeviceConfig(str(device)),
        precision=PrecisionConfig(precision),
        attention=attention_options_for(attention, **(attention_options or {})),
        backend=options_for(backend, **(backend_options or {})),
        model=ModelConfig(checkpoint, metric, seed),
    )
    return assemble(cfg, resolve_runtime(device, precision, cfg.attention))


__all__ = ["Runtime", "assemble", "build_model", "check_mode_backend", "create_model", "resolve_runtime", "runtime_for"]
