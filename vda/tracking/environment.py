"""The environment tags that say where a run happened: the device and its hardware's name, the CPU model, the
library versions and the git commit."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import torch

from vda.runtime.device import device_description
from vda.tracking.tags import clean


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS), else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5, check=True
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def git_commit() -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_tags(device: Optional[torch.device]) -> dict[str, str]:
    """Where a run happened: the device (and its hardware's name), the CPU model, library versions.

    ``device`` None (a sweep parent, whose jobs each tag the device they used): the host only.
    """
    tags = {
        "cpu": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",  # torch built without CUDA
        "git_commit": git_commit(),
    }
    if device is not None:
        tags["device"] = device.type
        tags["device_name"] = cpu_model() if device.type == "cpu" else device_description(device)
    if torch.cuda.is_available():
        tags["gpu"] = torch.cuda.get_device_name(0)
    try:
        tags["xformers"] = version("xformers")  # its version without importing it (slow)
    except PackageNotFoundError:
        tags["xformers"] = "not installed"
    return clean(tags)


__all__ = ["cpu_model", "environment_tags", "git_commit"]
