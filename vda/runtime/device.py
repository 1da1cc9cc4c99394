"""Device selection: ``auto`` picks cuda > mps > cpu; explicit requests fail early when unusable."""

from __future__ import annotations

import torch

from vda.errors import ConfigError, DeviceUnavailableError

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Return the torch device for ``name`` or raise :class:`DeviceUnavailableError`."""
    if isinstance(name, torch.device):
        name = str(name)
    kind = name.split(":")[0]
    if kind not in DEVICE_NAMES:
        raise ConfigError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_NAMES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "device=cuda was asked for but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); use device=cpu or device=auto"
        )
    if kind == "mps" and not mps_available():
        raise DeviceUnavailableError(
            "device=mps was asked for but the MPS backend is not available on this machine "
            "(it needs Apple silicon and macOS 12.3+); use device=cpu or device=auto"
        )
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (no-op on cpu)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_description(device: torch.device) -> str:
    """Human-readable name of the hardware behind ``device``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    import platform

    return platform.processor() or platform.machine() or "cpu"
