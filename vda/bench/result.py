"""What a benchmark job produces: a status, metrics, raw samples and per-implementation children.

Failures are results, not crashes: :func:`from_exception` maps an exception to ``unavailable`` (this
machine cannot run the combination), ``oom`` or ``error``, with a one-line reason.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from vda.errors import BackendUnavailableError, DeviceUnavailableError

OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


class Status(str, enum.Enum):
    ok = "ok"
    unavailable = "unavailable"
    oom = "oom"
    error = "error"
    killed = "killed"  # interrupted by SIGINT/SIGTERM


@dataclass
class JobResult:
    status: Status = Status.ok
    reason: str = ""
    # Final metrics (MLflow metric name -> value).
    metrics: dict[str, float] = field(default_factory=dict)
    # Values resolved at run time (e.g. scenario.frames when the config left it null), logged as params.
    params: dict[str, Any] = field(default_factory=dict)
    # Environment tags of the machine the job ran on.
    tags: dict[str, str] = field(default_factory=dict)
    # Raw latency samples in milliseconds, in call order.
    samples_ms: list[float] = field(default_factory=list)
    # Sub-results (one per attention implementation in the equivalence scenario).
    children: list["JobResult"] = field(default_factory=list)
    # Display name of a child.
    name: str = ""
    # Text files logged as the run's artifacts (file name -> content), e.g. a per-sequence CSV.
    artifacts: dict[str, str] = field(default_factory=dict)
    # When the measurement really started and ended (ms since the epoch; the worker's own clock).
    start_ms: Optional[int] = None
    end_ms: Optional[int] = None

    def to_json(self, path: Path) -> None:
        data = asdict(self)
        path.write_text(json.dumps(data, default=str))

    @classmethod
    def from_dict(cls, data: dict) -> "JobResult":
        data = dict(data)
        data["status"] = Status(data["status"])
        data["children"] = [cls.from_dict(child) for child in data.get("children", [])]
        return cls(**data)

    def timed(self, start_ms: int, end_ms: int) -> "JobResult":
        """This result with ``start_ms``/``end_ms`` filled where the job did not record its own."""
        self.start_ms = self.start_ms or start_ms
        self.end_ms = self.end_ms or end_ms
        return self

    @classmethod
    def from_json(cls, path: Path) -> "JobResult":
        return cls.from_dict(json.loads(path.read_text()))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OOM_MESSAGES)


def from_exception(exc: BaseException) -> JobResult:
    """The result of a job that raised ``exc``."""
    if isinstance(exc, (DeviceUnavailableError, BackendUnavailableError)):
        return JobResult(Status.unavailable, _first_line(str(exc)))
    if is_oom(exc):
        return JobResult(Status.oom, f"{type(exc).__name__}: {_first_line(str(exc))}")
    return JobResult(Status.error, f"{type(exc).__name__}: {_first_line(str(exc))}")


__all__ = ["JobResult", "Status", "from_exception", "is_oom"]
