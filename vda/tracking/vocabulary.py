"""The one vocabulary of metric names that ``run_infer.py`` and ``run_bench.py`` log, with units and precision.

Every metric is one :data:`METRICS` record: its unit (in the name as measured: ``_ms``, ``_s``, ``_mib``,
``_fps``), what it measures, how many significant digits are worth keeping (timings and memory: 4; errors
against a reference: all of them) and which direction is better (for the best configuration of a sweep).
:func:`rounded` is applied to every value logged; docs/tracking.md shows the table (:func:`markdown_table`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from vda.registry import Registry
from vda.runtime.timing import STAGES

TIMING_DIGITS = 4  # significant digits of timings, rates and memory: their run-to-run noise is larger


@dataclass(frozen=True)
class Metric:
    unit: str
    meaning: str
    # Significant digits kept when logged; None: full precision (errors against a reference).
    digits: Optional[int] = TIMING_DIGITS
    # "lower" or "higher" is better; None: not a figure of merit (counts, context).
    better: Optional[str] = None


METRICS: Registry[Metric] = Registry("metric")


def _timing(name: str, unit: str, meaning: str, better: Optional[str] = "lower") -> None:
    METRICS.register(name, Metric(unit, meaning, TIMING_DIGITS, better))


def _count(name: str, meaning: str) -> None:
    METRICS.register(name, Metric("count", meaning, None))


def _error(name: str, meaning: str, better: str = "lower") -> None:
    METRICS.register(name, Metric("ratio", meaning, None, better))


for _p in ("p50", "p90", "p99"):
    _timing(f"latency_ms_{_p}", "ms", f"{_p} latency of one call (a window; a frame in stream mode)")
_timing("latency_ms", "ms", "every timed call, one step each (the history behind the percentiles)")
_timing("latency_ms_mean", "ms", "mean latency of one call")
_timing("latency_ms_std", "ms", "standard deviation of the latency of one call", better=None)
_count("latency_runs", "timed calls behind the latency figures")
_timing("throughput_fps", "frames/s", "frames processed per second", better="higher")
_timing("first_call_s", "s", "cold start: model load (and build) plus the first call")
_timing("first_frame_s", "s", "time of the first frame in stream mode")
_timing("duration_s", "s", "wall time of one pass over the video (decode to last output written)")
_timing("model_load_s", "s", "model build and weight load")
_timing("backend_build_s", "s", "graph backends: export and compile on the first window")
_timing("peak_memory_mib", "MiB", "peak memory: device allocations on cuda and mps, process RSS on cpu")
_timing("rss_peak_mib", "MiB", "peak resident set size of the process")
_timing("cuda_peak_allocated_mib", "MiB", "peak memory allocated by tensors on the CUDA device")
_timing("cuda_peak_reserved_mib", "MiB", "peak memory reserved by torch's CUDA caching allocator")
_timing("mps_peak_allocated_mib", "MiB", "peak memory allocated by tensors on MPS (sampled)")
_timing("mps_peak_driver_mib", "MiB", "peak memory the Metal driver holds for the process (sampled)")
_timing("device_used_peak_mib", "MiB", "peak device-wide memory in use, other processes included (sampled)")
_timing("stream_state_mib", "MiB", "state stream mode carries from frame to frame")
for _stage in STAGES:
    _timing(f"stage_{_stage}_s", "s", f"seconds per pass spent in the {_stage} stage")
    _timing(f"stage_{_stage}_fraction", "fraction", f"share of the staged time spent in {_stage}", better=None)
_timing("after_model_s", "s", "time from the last network call to the last output written")
_timing("first_depth_s", "s", "time from the process start (imports included) to the first depth maps")
_timing("offline_s", "s", "wall time of the offline engine over the stream scenario's clip (model only)")
_timing("stream_over_offline_s", "ratio", "stream-mode seconds over the offline engine's on the same clip")
_count("frames", "frames processed (one pass)")
_count("frames_skipped", "undecodable frames skipped by the reader")
METRICS.register("depth_min", Metric("depth", "smallest depth value written", TIMING_DIGITS))
METRICS.register("depth_max", Metric("depth", "largest depth value written", TIMING_DIGITS))
_count("windows", "windows run through the network")
_count("encoded_frames", "frames run through the encoder (the feature cache skips the rest)")
_count("fp32_fallback_windows", "windows redone in fp32 after non-finite half-precision output")
_count("scene_cuts", "shot cuts detected (infer.scene_cuts=true): each shot runs on its own")
_count("degenerate_windows", "windows whose depth was constant (no alignment possible)")
_error("equiv_max_abs_err", "largest absolute difference of depth against the reference (math, fp32)")
_error("equiv_rel_l2", "relative L2 error of depth against the reference")
_error("equiv_absrel", "mean absolute relative error against the reference")
_error("equiv_delta1", "share of pixels within 1.25x of the reference", better="higher")
_error("stream_vs_offline_absrel", "AbsRel of stream-mode depth against offline depth of the same clip")
_error("stream_vs_offline_delta1", "delta1 of stream-mode depth against offline depth", better="higher")
_error("abs_rel", "accuracy: mean |d - gt| / gt over valid pixels, per frame, then frames, then sequences")
_error("rmse", "accuracy: root mean square depth error in the dataset's unit (metres)")
_error("delta1", "accuracy: share of valid pixels with max(d/gt, gt/d) < 1.25", better="higher")
_error("tae", "accuracy: temporal alignment error (x100) between consecutive frames, ScanNet")
_count("sequences", "accuracy: sequences scored")
_count("missing_predictions", "accuracy: scored frames without a prediction (skipped, warned)")
_count("nonfinite_frames", "accuracy: predictions holding NaN or inf (skipped, warned)")
_count("collapsed_frames", "accuracy: predictions with a zero range (black frames)")
_timing("inference_s", "s", "accuracy: seconds spent computing predictions")


def base_name(name: str) -> str:
    """``latency_ms_p50/sdpa fp32`` (a sweep's per-configuration summary) -> ``latency_ms_p50``."""
    return name.split("/", 1)[0]


def rounded(name: str, value: float) -> float:
    """``value`` at the precision the vocabulary keeps for ``name`` (4 significant digits for timings)."""
    value = float(value)
    digits = METRICS.get(base_name(name)).digits
    if digits is None or value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def markdown_table() -> str:
    """The vocabulary as a Markdown table (docs/tracking.md)."""
    lines = ["| metric | unit | meaning | precision | better |", "|---|---|---|---|---|"]
    for record in METRICS.records():
        m = record.value
        precision = "full" if m.digits is None else f"{m.digits} significant digits"
        lines.append(f"| `{record.name}` | {m.unit} | {m.meaning} | {precision} | {m.better or ''} |")
    return "\n".join(lines)


__all__ = ["METRICS", "Metric", "base_name", "markdown_table", "rounded"]
