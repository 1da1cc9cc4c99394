"""The tags vda puts on runs and experiments, and the environment tags that say where a run happened.

A tag is never empty (:func:`clean` drops empty values) and never longer than MLflow's limit.
"""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Mapping, Optional

import torch

from vda.runtime.device import device_description

MAX_TAG_LENGTH = 5000
MAX_PARAM_LENGTH = 500

PARENT = "mlflow.parentRunId"  # MLflow nests a run under the run of this id
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"  # the description of a run or an experiment (Markdown)
# Experiment kind: MLflow's UI opens an experiment of this kind on its runs (machine-learning view).
EXPERIMENT_KIND = "mlflow.experimentKind"
MACHINE_LEARNING = "custom_model_development"
COMMAND = "vda.command"  # on an experiment: the entry script that logs to it
KIND = "vda.kind"  # sweep, job, implementation, dataset or video
SCENARIO = "vda.scenario"
OVERRIDES = "vda.overrides"  # the full command-line overrides of the run
STATUS = "status"  # vda's own status: done/ok, unavailable, oom, error, failed, killed
STATUS_REASON = "status_reason"  # why a run did not end ok (absent when it did)
SWEEP_JOBS = "jobs."  # jobs.<status> on a sweep parent: how many jobs ended so


def clean(tags: Mapping[str, object]) -> dict[str, str]:
    """``tags`` as strings within MLflow's length limit, without the empty ones."""
    out = {}
    for key, value in tags.items():
        text = "" if value is None else str(value)
        if text.strip():
            out[key] = text[:MAX_TAG_LENGTH]
    return out


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


__all__ = [
    "COMMAND",
    "EXPERIMENT_KIND",
    "KIND",
    "MACHINE_LEARNING",
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "NOTE",
    "OVERRIDES",
    "PARENT",
    "RUN_NAME",
    "SCENARIO",
    "STATUS",
    "STATUS_REASON",
    "SWEEP_JOBS",
    "clean",
    "cpu_model",
    "environment_tags",
    "git_commit",
]
