"""The one model factory: resolve the runtime once, check every choice, build, load weights, move.

:func:`resolve_runtime` turns the user's device/precision/attention names into a checked :class:`Runtime`
(done once, by the entry point or by :func:`build_model`); :func:`create_model` builds the network for a
resolved runtime without resolving anything again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch

from vda import backends
from vda.attention import check_attention
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
    attention: str = "sdpa"
    sdpa_kernel: str = "auto"


def resolve_runtime(
    device: str | torch.device = "auto",
    precision: str | Precision = "auto",
    attention: str = "sdpa",
    sdpa_kernel: str = "auto",
) -> Runtime:
    """Resolve ``auto`` choices and check that the combination can run here (one-line errors otherwise)."""
    torch_device = resolve_device(device)
    resolved = resolve_precision(precision, torch_device)
    check_attention(attention, torch_device, resolved.value, sdpa_kernel)
    return Runtime(torch_device, resolved, attention, sdpa_kernel)


def create_model(
    runtime: Runtime,
    encoder: str = "vits",
    metric: bool = False,
    checkpoint: Optional[str | os.PathLike] = None,
    seed: int = 0,
) -> VideoDepthAnything:
    """The network in eval mode on ``runtime.device``.

    ``checkpoint``: None keeps the fresh initialisation; "auto" downloads the official file; "random" loads
    seeded random weights; anything else is a path to a ``.pth`` state dict.
    """
    model = VideoDepthAnything(encoder, metric, runtime.attention, runtime.sdpa_kernel, runtime.precision)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, seed)
    return model.to(runtime.device).eval()


def build_model(
    encoder: str = "vits",
    metric: bool = False,
    attention: str = "sdpa",
    sdpa_kernel: str = "auto",
    device: str | torch.device = "auto",
    precision: str | Precision = "auto",
    checkpoint: Optional[str | os.PathLike] = "auto",
    seed: int = 0,
    backend: str = "torch",
    backend_options: Optional[dict] = None,
):
    """Build the network, checking every choice before any work.

    ``device="auto"``: cuda > mps > cpu; ``precision="auto"``: the device's choice (fp16 on cuda, fp32
    elsewhere); ``checkpoint``: "auto" (the official file, downloaded once), "random" (seeded test weights),
    a ``.pth`` path, or None (fresh initialisation). ``backend``: ``torch`` returns the network itself; another
    runtime (``compile``, ``onnxruntime``, ``openvino``, see :mod:`vda.backends`) returns a runner of it with
    the same ``encode``/``decode``/``__call__`` interface, configured by ``backend_options``.
    """
    runtime = resolve_runtime(device, precision, attention, sdpa_kernel)
    check_backend(backend, runtime.device)
    model = create_model(runtime, encoder, metric, checkpoint, seed)
    return model if backend == "torch" else backends.create(backend, model, **(backend_options or {}))


def check_backend(name: str, device: torch.device) -> None:
    """Raise before any model is built when backend ``name`` cannot run on ``device`` (ConfigError if unknown)."""
    reason = backends.backend_status(name, device)
    if reason is not None:
        raise BackendUnavailableError(reason)


__all__ = ["Runtime", "build_model", "check_backend", "create_model", "resolve_runtime"]
