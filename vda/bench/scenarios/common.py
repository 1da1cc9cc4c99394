"""What every scenario needs: the window shape for the device, a seeded input, the model for a config."""

from __future__ import annotations

from typing import Any, Optional

import torch

from vda.model import VideoDepthAnything, build_model
from vda.runtime.precision import Precision

# (frames, height, width) when the scenario leaves them null.
REFERENCE_WINDOW = (32, 518, 518)  # the published workload, used on cuda and mps
CPU_WINDOW = (8, 196, 196)


def window_shape(scenario: Any, device: torch.device) -> tuple[int, int, int, int]:
    """``[batch, frames, height, width]`` from the scenario config, nulls filled with the device default."""
    frames, height, width = CPU_WINDOW if device.type == "cpu" else REFERENCE_WINDOW
    return (
        int(scenario.batch),
        int(scenario.frames or frames),
        int(scenario.height or height),
        int(scenario.width or width),
    )


def shape_params(shape: tuple[int, int, int, int]) -> dict[str, int]:
    """The resolved shape under the config's param names (replacing the nulls)."""
    batch, frames, height, width = shape
    return {"scenario.batch": batch, "scenario.frames": frames, "scenario.height": height, "scenario.width": width}


def random_window(shape: tuple[int, int, int, int], seed: int, device: torch.device) -> torch.Tensor:
    """Normalised-looking frames ``[B, T, 3, H, W]`` from a seeded CPU generator (same on every device)."""
    batch, frames, height, width = shape
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, height, width, generator=generator).to(device)


def build_for(
    cfg: Any, device: torch.device, precision: Precision, attention: Optional[str] = None
) -> VideoDepthAnything:
    """The model ``cfg`` asks for, optionally with another attention implementation."""
    return build_model(
        encoder=cfg.encoder.name,
        metric=bool(cfg.model.metric),
        attention=attention or cfg.attention.name,
        sdpa_kernel=cfg.attention.sdpa_kernel,
        device=device,
        precision=precision.value,
        checkpoint=cfg.model.checkpoint,
        seed=int(cfg.model.seed),
    )
