"""Latency measurement that respects asynchronous devices.

* :class:`DeviceTimer` times one call: CUDA events on cuda, ``torch.mps.synchronize`` around a wall clock on
  mps, ``time.perf_counter`` on cpu.
* :class:`LatencyTracker` runs warm-up calls, then repeats until both a minimum count and a minimum time are
  reached, and keeps every raw sample.
* :func:`time_first_call` times the cold path (model load + first forward) on its own.
* :class:`StageTimes` accumulates seconds per named stage (decode, encoder, head, ...) for a pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, TypeVar

import numpy as np
import psutil
import torch

from vda.runtime.device import facts, synchronize

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Stages of the video pipeline, in order (decode and preprocess feed the model, write is every output).
# scene_cuts: the shot-cut detector (infer.scene_cuts=true); build: graph backends' graphs.
STAGES = ("decode", "scene_cuts", "preprocess", "build", "encoder", "head", "align", "write")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of latency samples in milliseconds (percentiles with linear interpolation)."""

    samples_ms: tuple[float, ...]
    p50: float
    p90: float
    p99: float
    mean: float
    std: float

    @property
    def count(self) -> int:
        return len(self.samples_ms)

    @property
    def total_s(self) -> float:
        return sum(self.samples_ms) / 1000.0

    @classmethod
    def from_samples(cls, samples_ms: list[float] | tuple[float, ...]) -> "LatencyStats":
        if not samples_ms:
            raise ValueError("no latency samples to summarise")
        values = np.asarray(samples_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(
            samples_ms=tuple(float(v) for v in values),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            mean=float(values.mean()),
            std=float(values.std()),
        )

    def metrics(self) -> dict[str, float]:
        """Under the MLflow metric names: ``latency_ms_{p50,p90,p99,mean,std}`` and ``latency_runs``."""
        return {
            "latency_ms_p50": self.p50,
            "latency_ms_p90": self.p90,
            "latency_ms_p99": self.p99,
            "latency_ms_mean": self.mean,
            "latency_ms_std": self.std,
            "latency_runs": float(self.count),
        }

    def throughput(self, items_per_call: int) -> float:
        """Items (e.g. frames) per second over all timed calls."""
        return items_per_call * self.count / self.total_s if self.total_s > 0 else math.inf


class DeviceTimer:
    """Time one region on ``device``; ``elapsed_ms`` is set on exit.

    The device's stopwatch (:mod:`vda.runtime.device`) does the timing: CUDA events recorded on the
    device's own stream (device time of the queued work), or a wall clock with the device synchronised
    at both ends (mps, cpu).
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.elapsed_ms: float = math.nan
        self._stopwatch = facts(self.device).stopwatch(self.device)

    def __enter__(self) -> "DeviceTimer":
        self._stopwatch.start()
        return self

    def __exit__(self, *exc) -> None:
        self.elapsed_ms = self._stopwatch.stop()


@dataclass
class LatencyTracker:
    """Warm up, then call ``fn`` until ``min_runs`` calls *and* ``min_time_s`` seconds are reached.

    ``max_runs`` caps very fast functions (0 = no cap); it never cuts below ``min_runs``.
    """

    device: torch.device | str = "cpu"
    warmup: int = 2
    min_runs: int = 10
    min_time_s: float = 1.0
    max_runs: int = 0

    def measure(self, fn: Callable[[], object]) -> LatencyStats:
        device = torch.device(self.device)
        for _ in range(self.warmup):
            fn()
        synchronize(device)
        samples: list[float] = []
        started = time.perf_counter()
        while True:
            with DeviceTimer(device) as timer:
                fn()
            samples.append(timer.elapsed_ms)
            enough = len(samples) >= self.min_runs and time.perf_counter() - started >= self.min_time_s
            capped = self.max_runs > 0 and len(samples) >= max(self.max_runs, self.min_runs)
            if enough or capped:
                break
        stats = LatencyStats.from_samples(samples)
        logger.debug("latency over %d runs: p50 %.3f ms, mean %.3f ms", stats.count, stats.p50, stats.mean)
        return stats


def since_process_start() -> float:
    """Seconds since this process was started (interpreter start-up and imports included), by the kernel's clock."""
    return time.time() - psutil.Process().create_time()


def time_first_call(fn: Callable[[], T], device: torch.device | str) -> tuple[T, float]:
    """Run ``fn`` once and return ``(result, seconds)``, wall clock, synchronised at the end.

    Meant for the cold path (building/loading a model and its first forward), which includes host work
    that device events would not see.
    """
    device = torch.device(device)
    synchronize(device)
    t0 = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - t0


class StageTimes:
    """Seconds per named stage, accumulated over many calls.

    With a ``device`` the asynchronous work a stage queues is charged to it. On a device with event timing
    (CUDA) each stage records two events and is charged ``max(host seconds, device seconds between its
    events)``, read once the device has passed them: no host synchronisation per stage, so pinned copies overlap
    with compute. ``sync=True`` (profiling) or a device without events synchronises after every stage instead,
    which serialises host and device.
    """

    def __init__(self, device: Optional[torch.device] = None, sync: bool = False) -> None:
        self.device = torch.device(device) if device is not None else None
        self.sync = sync
        self.calls: dict[str, int] = {}
        self._seconds: dict[str, float] = {}
        self._deferred = self.device is not None and not sync and facts(self.device).deferred_timing
        self._pending: list[tuple[str, float, Any]] = []  # (stage, host seconds, marked stopwatch)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        watch = facts(self.device).stopwatch(self.device) if self._deferred else None
        if watch is not None:
            watch.start()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if watch is not None:
                watch.mark()
                self._pending.append((name, time.perf_counter() - t0, watch))
                self.calls[name] = self.calls.get(name, 0) + 1
                self._collect(wait=False)
            else:
                if self.device is not None:
                    synchronize(self.device)
                self.add(name, time.perf_counter() - t0)

    def _collect(self, wait: bool) -> None:
        """Charge the pending stages the device has passed (all of them with ``wait``)."""
        while self._pending and (wait or self._pending[0][2].done()):
            name, host_s, watch = self._pending.pop(0)
            self._seconds[name] = self._seconds.get(name, 0.0) + max(host_s, watch.elapsed() / 1000.0)

    def add(self, name: str, seconds: float) -> None:
        self._seconds[name] = self._seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds per stage (waits for the device to pass the stages still pending)."""
        self._collect(wait=True)
        return self._seconds

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def as_dict(self) -> dict[str, float]:
        return dict(self.seconds)


__all__ = ["STAGES", "DeviceTimer", "LatencyStats", "LatencyTracker", "StageTimes", "since_process_start", "time_first_call"]
