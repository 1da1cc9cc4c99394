"""What every scenario needs: the window shape for the device, a seeded input, the model for a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from vda.attention import check_attention
from vda.errors import BackendUnavailableError
from vda import backends
from vda.factory import Runtime, assemble
from vda.paths import resolve_path
from vda.depth.windows import WINDOW
from vda.runtime.device import facts
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import Precision
from vda.video.synthetic import synthetic_clip


def window_shape(cfg: Any, device: torch.device) -> tuple[int, int, int, int]:
    """``[batch, frames, height, width]`` from the scenario config, nulls filled with the device's default (a
    whole 32-frame window on a backend that runs only those, which refuses any other count up front)."""
    scenario = cfg.scenario
    frames, height, width = facts(device).bench_window
    if backends.get_backend(cfg.backend.name).whole_windows:
        if scenario.frames not in (None, WINDOW):
            raise BackendUnavailableError(
                f"backend={cfg.backend.name} runs whole windows of {WINDOW} frames; scenario.frames={scenario.frames}: "
                f"use scenario.frames={WINDOW} or null"
            )
        frames = WINDOW
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


def build_for(cfg: Any, device: torch.device, precision: Precision, attention: Optional[str] = None):
    """The runner ``cfg`` asks for (device and precision already resolved), optionally with another attention."""
    options = check_attention(attention or cfg.attention, device, precision.value)
    return assemble(cfg, Runtime(device, precision, options))


def memory_tracker(cfg: Any, device: torch.device) -> MemoryTracker:
    """The peak-memory region of a job: device-wide figures where the backend allocates outside torch."""
    return MemoryTracker(device, other_runtimes=backends.get_backend(cfg.backend.name).foreign_memory)


def clip_path(scenario: Any, workdir: Path) -> Path:
    """``scenario.input``, or a generated clip (``clip_frames`` at ``clip_height`` x ``clip_width``) in ``workdir``."""
    if scenario.input:
        return resolve_path(scenario.input)
    return synthetic_clip(
        workdir / "clip.mp4", scenario.clip_frames, scenario.clip_height, scenario.clip_width, scenario.clip_fps
    )

