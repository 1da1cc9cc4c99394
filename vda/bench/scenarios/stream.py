"""``stream``: per-frame latency of stream mode (``run_infer.py mode=stream``; frames decoded one at a time), its
first frame, its state and peak memory; with ``vs_offline`` also the offline engine's seconds on the same clip
and the gap between stream and offline depth (AbsRel, δ1, reported, not asserted: the published gap on ScanNet
is δ1 0.926 -> 0.836)."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vda.bench.agreement import compare
from vda.bench.result import JobResult
from vda.bench.scenarios.base import SCENARIOS, ClipScenarioConfig, Scenario
from vda.bench.scenarios.common import build_for, clip_path, memory_tracker
from vda.errors import ConfigError
from vda.depth.engine import WindowedDepth
from vda.factory import check_mode_backend
from vda.runtime.device import facts
from vda.runtime.precision import Precision
from vda.runtime.timing import LatencyStats, time_first_call
from vda.depth.stream import StreamingDepth
from vda.video import VideoReader, probe


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
        # frames decoded one at a time (a long stream never sits in memory), and again for the offline run
        info = probe(clip_path(scenario, workdir), max_res=scenario.max_res)
        with torch.inference_mode(), memory_tracker(cfg, device) as memory:
            model, build_s = time_first_call(lambda: build_for(cfg, device, precision), device)
            stream = StreamingDepth(model, input_size, scenario.cached_projections)
            depth, steps_ms = [], []
            for frame in VideoReader(info):
                step = stream.step(frame)
                steps_ms.append(stream.last_step_s * 1000.0)
                if scenario.vs_offline:
                    depth.append(step)
        if scenario.vs_offline:
            with torch.inference_mode():
                started = time.perf_counter()
                offline = torch.cat([d.cpu() for d in WindowedDepth(model, input_size).run(iter(VideoReader(info)))])
                offline_s = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
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
        gap = compare(np.stack(depth), offline.numpy())
        metrics.update(
            stream_vs_offline_absrel=gap.absrel, stream_vs_offline_delta1=gap.delta1, offline_s=offline_s,
            stream_over_offline_s=sum(steps_ms) / 1000.0 / offline_s,
        )
    params = {"scenario.input": str(info.path), "scenario.input_size": input_size, "video.size": f"{info.width}x{info.height}"}
    return JobResult(metrics=metrics, params=params, samples_ms=steps_ms)


SCENARIOS.register("stream", Scenario(StreamScenarioConfig, run), help="per-frame latency of stream mode")
