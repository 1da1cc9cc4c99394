"""The Video Depth Anything network and its constructor."""

from __future__ import annotations

import os

import torch

from vda.attention import check_backend
from vda.model.video_depth_anything import ENCODERS, VideoDepthAnything, encoder_spec
from vda.runtime.device import resolve_device
from vda.runtime.precision import resolve_precision


def build_model(
    encoder: str = "vits",
    metric: bool = False,
    attention: str = "sdpa",
    sdpa_kernel: str = "auto",
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
) -> VideoDepthAnything:
    """Build the network in eval mode on ``device``, checking every choice before any work.

    ``checkpoint``: None keeps the fresh initialisation; "auto" downloads the official file; "random" loads
    seeded random weights; anything else is a path to a ``.pth`` state dict.
    """
    from vda.weights import load_checkpoint

    encoder_spec(encoder)
    torch_device = resolve_device(device)
    resolved = resolve_precision(precision, torch_device)
    check_backend(attention, torch_device, sdpa_kernel)
    model = VideoDepthAnything(encoder, metric, attention, sdpa_kernel, resolved)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, seed)
    return model.to(torch_device).eval()


__all__ = ["ENCODERS", "VideoDepthAnything", "build_model"]
