"""The body of ``run_bench.py``: measure one job (isolated), record it in MLflow, summarise it in one line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from vda.bench.launcher import launch
from vda.bench.recorder import job_name, record_job
from vda.bench.result import JobResult, Status

from vda.errors import VDAError
from vda.runtime.signals import Interrupted
from vda.tracking import configure, sweep_parent_run_id


class BenchJobFailed(VDAError):
    """A single (non-sweep) benchmark job ended with a status other than ``ok``; it is still recorded."""


@dataclass
class JobOutcome:
    name: str
    result: JobResult
    run_id: Optional[str]
    tracking_uri: Optional[str]


def _output_dir() -> Optional[Path]:
    """The Hydra job's output folder (None when called outside Hydra, e.g. with the compose API)."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return None


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_job(cfg: Any) -> JobOutcome:
    """Measure the job ``cfg`` describes and record it; never raises for a failed measurement.

    An interruption (SIGINT/SIGTERM) stops the job's process, records the job as ``killed`` (MLflow status
    KILLED) and is raised again, so a sweep stops after this job with the finished ones kept.
    """
    try:
        result = launch(cfg, _output_dir())
    except Interrupted as exc:
        _record(cfg, JobResult(Status.killed, str(exc)))
        raise
    return JobOutcome(job_name(cfg, result), result, *_record(cfg, result))


def _record(cfg: Any, result: JobResult) -> tuple[Optional[str], Optional[str]]:
    """``(run_id, tracking_uri)`` of the job's MLflow run; ``(None, None)`` when tracking is off."""
    if not cfg.mlflow.enabled:
        return None, None
    uri = configure(cfg.mlflow)
    return record_job(cfg, result, sweep_parent_run_id()), uri


def _fmt(value: float, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f} {unit}"


# (metric, label, unit, digits) shown on the terminal when the job logged them.
SUMMARY_METRICS = (
    ("latency_ms_p50", "p50", "ms", 1),
    ("latency_ms_p90", "p90", "ms", 1),
    ("latency_ms_p99", "p99", "ms", 1),
    ("throughput_fps", "", "frames/s", 2),
    ("first_call_s", "first call", "s", 2),
    ("peak_mem_mb", "peak", "MiB", 0),
)
STAGE_PREFIX = "stage_s_"


def summary(outcome: JobOutcome) -> str:
    """Human-readable lines for the terminal."""
    r = outcome.result
    m = r.metrics
    if r.status is not Status.ok:
        lines = [f"{outcome.name}: {r.status.value} ({r.reason})"]
    else:
        shown = [
            f"{label} {_fmt(m[key], unit, digits)}".strip() for key, label, unit, digits in SUMMARY_METRICS if key in m
        ]
        lines = ["  ".join([f"{outcome.name}: ok", *shown])]
    stages = {k[len(STAGE_PREFIX) :]: v for k, v in m.items() if k.startswith(STAGE_PREFIX)}
    if stages:
        lines.append("  seconds per stage: " + "  ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    for child in r.children:
        c = child.metrics
        if child.status is Status.ok:
            lines.append(
                f"  {child.name}: max abs {c['equiv_max_abs_err']:.3g}  rel L2 {c['equiv_rel_l2']:.3g}  "
                f"AbsRel {c['equiv_absrel']:.3g}  delta1 {c['equiv_delta1']:.4f}"
            )
        else:
            lines.append(f"  {child.name}: {child.status.value} ({child.reason})")
    if outcome.run_id:
        lines.append(f"  MLflow run {outcome.run_id} in {outcome.tracking_uri}")
    return "\n".join(lines)


def check_single_run(outcome: JobOutcome) -> None:
    """Outside a sweep, a job that did not run is an error for the caller (exit status 2); in a sweep it is data."""
    if outcome.result.status is not Status.ok and not in_multirun():
        where = f" (recorded as MLflow run {outcome.run_id})" if outcome.run_id else ""
        raise BenchJobFailed(f"{outcome.name}: {outcome.result.status.value}: {outcome.result.reason}{where}")


__all__ = ["BenchJobFailed", "JobOutcome", "check_single_run", "in_multirun", "run_job", "summary"]
