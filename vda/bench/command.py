"""The body of ``run_bench.py``: measure one job (isolated), record it in MLflow, summarise it in one line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from vda.bench.launcher import LOG_FILE, launch
from vda.bench.recorder import BENCH_VIEW, job_name, job_record
from vda.bench.result import JobResult, Status
from vda.errors import VDAError
from vda.runtime.timing import STAGES
from vda.runtime.signals import Interrupted
from vda.tracking import client, runs
from vda.tracking.store import open_store
from vda.tracking.sweep import sweep_parent_run_id
from vda.tracking.ui import runs_url, where_logged


class BenchJobFailed(VDAError):
    """A single (non-sweep) benchmark job ended with a status other than ``ok``; it is still recorded."""


@dataclass
class JobOutcome:
    name: str
    result: JobResult
    run_id: Optional[str]
    # The line saying where the run was logged and the URL of its runs table (None when tracking is off).
    where: Optional[str]


def _output_dir() -> Optional[Path]:
    """The Hydra job's output folder (None when called outside Hydra, e.g. with the compose API)."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return None


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _overrides() -> str:
    """The job's command-line overrides (empty outside Hydra)."""
    return " ".join(HydraConfig.get().overrides.task) if HydraConfig.initialized() else ""


def run_job(cfg: Any) -> JobOutcome:
    """Measure the job ``cfg`` describes and record it; never raises for a failed measurement.

    An interruption (SIGINT/SIGTERM) stops the job's process, records the job as ``killed`` (MLflow status
    KILLED) and is raised again, so a sweep stops after this job with the finished ones kept.
    """
    workdir = _output_dir()
    start_ms = client.now_ms()
    try:
        result = launch(cfg, workdir)
    except Interrupted as exc:
        _record(cfg, JobResult(Status.killed, str(exc)).timed(start_ms, client.now_ms()), workdir)
        raise
    return JobOutcome(job_name(cfg, result), result, *_record(cfg, result, workdir))


def _record(cfg: Any, result: JobResult, workdir: Optional[Path]) -> tuple[Optional[str], Optional[str]]:
    """``(run_id, where)`` of the job's MLflow run (its worker's log attached); ``(None, None)`` when tracking is off."""
    if not cfg.mlflow.enabled:
        return None, None
    store = open_store(cfg.mlflow, BENCH_VIEW)
    log = workdir / LOG_FILE if workdir is not None and cfg.job.isolate else None
    parent = sweep_parent_run_id()
    run_id = runs.write(store, job_record(cfg, result, _overrides(), log), parent)
    return run_id, where_logged(store, runs_url(store, BENCH_VIEW, parent))


def _fmt(value: float, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f} {unit}"


# (metric, label, unit, digits) shown on the terminal when the job logged them.
SUMMARY_METRICS = (
    ("latency_ms_p50", "p50", "ms", 1),
    ("latency_ms_p90", "p90", "ms", 1),
    ("latency_ms_p99", "p99", "ms", 1),
    ("throughput_fps", "", "frames/s", 2),
    ("first_call_s", "first call", "s", 2),
    ("peak_memory_mib", "peak", "MiB", 0),
    ("abs_rel", "AbsRel", "", 4),
    ("rmse", "RMSE", "", 4),
    ("delta1", "δ1", "", 4),
    ("tae", "TAE", "", 3),
)


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
    stages = {stage: m[f"stage_{stage}_s"] for stage in STAGES if f"stage_{stage}_s" in m}
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
    if outcome.where:
        lines += [f"  MLflow run {outcome.run_id}", outcome.where]
    return "\n".join(lines)


def check_single_run(outcome: JobOutcome) -> None:
    """Outside a sweep, a job that did not run is an error for the caller (exit status 2); in a sweep it is data."""
    if outcome.result.status is not Status.ok and not in_multirun():
        where = f" (recorded as MLflow run {outcome.run_id})" if outcome.run_id else ""
        raise BenchJobFailed(f"{outcome.name}: {outcome.result.status.value}: {outcome.result.reason}{where}")


__all__ = ["BenchJobFailed", "JobOutcome", "check_single_run", "in_multirun", "run_job", "summary"]
