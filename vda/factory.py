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

from vda.attention import check_attention
from vda.model import ENCODERS, VideoDepthAnything
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
    ENCODERS.get(encoder)
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
) -> VideoDepthAnything:
    """Build the network, checking every choice before any work.

    ``device="auto"``: cuda > mps > cpu; ``precision="auto"``: the device's choice (fp16 on cuda, fp32
    elsewhere); ``checkpoint``: "auto" (the official file, downloaded once), "random" (seeded test weights),
    a ``.pth`` path, or None (fresh initialisation).
    """
    ENCODERS.get(encoder)
    return create_model(resolve_runtime(device, precision, attention, sdpa_kernel), encoder, metric, checkpoint, seed)


__all__ = ["Runtime", "build_model", "create_model", "resolve_runtime"]
