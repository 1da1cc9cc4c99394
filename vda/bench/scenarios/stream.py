"""``stream``: per-frame latency of stream mode (``run_infer.py mode=stream``), its first frame, its state and
peak memory; with ``vs_offline`` also the gap between stream and offline depth on the same clip (AbsRel, δ1,
reported, not asserted: the published gap on ScanNet is δ1 0.926 -> 0.836)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vda.bench.agreement import compare
from vda.bench.result import JobResult
from vda.bench.scenarios.base import SCENARIOS, ClipScenarioConfig, Scenario
from vda.bench.scenarios.common import build_for, clip_frames, memory_tracker
from vda.errors import ConfigError
from vda.depth.engine import WindowedDepth
from vda.factory import check_mode_backend
from vda.runtime.device import facts
from vda.runtime.precision import Precision
from vda.runtime.timing import LatencyStats, time_first_call
from vda.depth.stream import StreamingDepth


@dataclass
class StreamScenarioConfig(ClipScenarioConfig):
    """Stream mode over a clip: every frame timed, the first ``warmup`` frames left out of the percentiles."""

    name: str = "stream"
    warmup: int = 2
    cached_projections: bool = True
    # Also run the offline algorithm on the same frames and report the depth gap.
    vs_offline: bool = True


def run(cfg: Any, device: torch.device, precision: Precision) -> JobResult:
    scenario = cfg.scenario
    check_mode_backend("stream", cfg.backend.name)
    if scenario.clip_frames <= scenario.warmup + 1 and not scenario.input:
        raise ConfigError(f"scenario.clip_frames={scenario.clip_frames} leaves no timed frame after warmup={scenario.warmup}")
    input_size = int(scenario.input_size or facts(device).bench_input_size)
    workdir = Path(tempfile.mkdtemp(prefix="vda-bench-stream-"))
    try:
        frames, info = clip_frames(scenario, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with torch.inference_mode(), memory_tracker(cfg, device) as memory:
        model, build_s = time_first_call(lambda: build_for(cfg, device, precision), device)
        stream = StreamingDepth(model, input_size, scenario.cached_projections)
        depth, steps_ms = [], []
        for frame in frames:
            depth.append(stream.step(frame))
            steps_ms.append(stream.last_step_s * 1000.0)
    stats = LatencyStats.from_samples(steps_ms[scenario.warmup :])
    metrics = {
        **stats.metrics(),
        "throughput_fps": 1000.0 / stats.mean,
        "first_call_s": build_s + steps_ms[0] / 1000.0,
        "first_frame_s": steps_ms[0] / 1000.0,
        "stream_state_mib": stream.state_bytes / 2**20,
        "peak_memory_mib": memory.peak_mb,
        **memory.details,
    }
    if scenario.vs_offline:
        with torch.inference_mode():
            offline = torch.cat(list(WindowedDepth(model, input_size).run(iter(frames)))).cpu().numpy()
        gap = compare(np.stack(depth), offline)
        metrics.update(stream_vs_offline_absrel=gap.absrel, stream_vs_offline_delta1=gap.delta1)
    params = {"scenario.input": str(info.path), "scenario.input_size": input_size, "video.size": f"{info.width}x{info.height}"}
    return JobResult(metrics=metrics, params=params, samples_ms=steps_ms)


SCENARIOS.register("stream", Scenario(StreamScenarioConfig, run), help="per-frame latency of stream mode")
