"""Precision: fp32, fp16 or bf16 through autocast for the device actually used.

Autocast is entered only for a half precision that :func:`resolve_precision` accepted on the device, so a
run is never labelled with a precision that did not run; fp32 never enters an autocast context at all.
"""

from __future__ import annotations

import contextlib
import enum
from typing import Iterator

import torch

from vda.errors import ConfigError, DeviceUnavailableError
from vda.runtime.device import facts


class Precision(str, enum.Enum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.value]


def resolve_precision(name: str | Precision, device: torch.device) -> Precision:
    """Resolve ``auto`` (the device's choice: fp16 on cuda, fp32 elsewhere) and check it can run on ``device``."""
    try:
        precision = Precision(name)
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise ConfigError(f"unknown precision {name!r}; choose one of {choices}") from None
    device = torch.device(device)
    if precision is Precision.auto:
        return Precision(facts(device).auto_precision)
    if precision is not Precision.fp32:
        problem = facts(device).precision_problem(device, precision.value)
        if problem is not None:
            raise DeviceUnavailableError(problem)
    return precision


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """Autocast for ``device.type`` (never a hard-coded ``"cuda"``), none at all for fp32; in both, the float32
    operations run in IEEE float32 (TF32 off on CUDA: an fp32 label, or the fp32 regions of a half-precision
    run, mean float32)."""
    with facts(device).fp32_math():
        if precision in (Precision.fp32, Precision.auto):
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=precision.dtype):
                yield


def fp32_region(device: torch.device) -> contextlib.AbstractContextManager:
    """Run a region in float32: leaves autocast only where it is on (never touches autocast in an fp32 run)."""
    if torch.is_autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


__all__ = ["Precision", "autocast", "fp32_region", "resolve_precision"]
