"""Precision: fp32, fp16 or bf16 through autocast for the device actually used."""

from __future__ import annotations

import contextlib
import enum

import torch

from vda.errors import ConfigError, DeviceUnavailableError


class Precision(str, enum.Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.value]


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "mps":
        try:
            torch.ones(1, dtype=torch.bfloat16, device=device)
        except (RuntimeError, TypeError):
            return False
        return True
    return True


def resolve_precision(name: str | Precision, device: torch.device) -> Precision:
    """Resolve ``auto`` (fp16 on cuda, fp32 elsewhere) and check the dtype works on ``device``."""
    try:
        precision = Precision(name)
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise ConfigError(f"unknown precision {name!r}; choose one of {choices}") from None
    if precision is Precision.auto:
        return Precision.fp16 if device.type == "cuda" else Precision.fp32
    if precision is Precision.bf16 and not _bf16_supported(device):
        raise DeviceUnavailableError(
            f"precision=bf16 is not supported on {device} here; use precision=fp16 or precision=fp32"
        )
    return precision


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """Autocast context for ``device.type`` (never a hard-coded ``"cuda"``); a no-op for fp32."""
    if precision in (Precision.fp32, Precision.auto):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.dtype)


def fp32_region(device: torch.device) -> contextlib.AbstractContextManager:
    """Disable autocast inside a region that must run in float32."""
    return torch.autocast(device_type=device.type, enabled=False)
