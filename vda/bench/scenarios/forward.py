"""``forward``: latency, throughput and peak memory of ``model(x)`` on one window ``[B, T, 3, H, W]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vda.bench.result import JobResult
from vda.bench.scenarios.base import SCENARIOS, Scenario, WindowScenarioConfig
from vda.bench.scenarios.common import build_for, memory_tracker, random_window, shape_params, window_shape
from vda.runtime.precision import Precision
from vda.runtime.timing import LatencyTracker, time_first_call


@dataclass
class ForwardScenarioConfig(WindowScenarioConfig):
    """Latency, throughput and peak memory of ``model(x)`` on one window."""

    name: str = "forward"
    # Untimed calls before measuring.
    warmup: int = 2
    # Timed calls continue until both minimums are reached (max_runs > 0 caps the count).
    min_runs: int = 10
    min_time_s: float = 5.0
    max_runs: int = 0


def run(cfg: Any, device: torch.device, precision: Precision) -> JobResult:
    scenario = cfg.scenario
    shape = window_shape(cfg, device)
    x = random_window(shape, int(scenario.input_seed), device)
    tracker = LatencyTracker(
        device=device,
        warmup=int(scenario.warmup),
        min_runs=int(scenario.min_runs),
        min_time_s=float(scenario.min_time_s),
        max_runs=int(scenario.max_runs),
    )
    with torch.inference_mode(), memory_tracker(cfg, device) as memory:

        def load_and_first_forward():
            model = build_for(cfg, device, precision)
            model(x)
            return model

        model, first_call_s = time_first_call(load_and_first_forward, device)
        stats = tracker.measure(lambda: model(x))
    frames_per_call = shape[0] * shape[1]
    metrics = {
        **stats.metrics(),
        "first_call_s": first_call_s,
        "throughput_fps": stats.throughput(frames_per_call),
        "peak_memory_mib": memory.peak_mb,
        **memory.details,
    }
    return JobResult(metrics=metrics, params=shape_params(shape), samples_ms=list(stats.samples_ms))


SCENARIOS.register("forward", Scenario(ForwardScenarioConfig, run), help="latency, throughput and peak memory of one window")
