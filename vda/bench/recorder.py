"""A benchmark job as MLflow runs: one run per job, one nested run per child (implementation).

Names put what tells jobs apart first: ``sdpa·fp32 | forward vits cpu`` (``·openvino`` off the torch backend;
``(unavailable)`` or another status after it when the job did not run). Params are the flattened resolved config
plus the values resolved at run time (``device.resolved``, ``precision.resolved``, ``attention.resolved``,
``backend.resolved``, the window shape); tags are ``status`` (and ``status_reason`` when it is not ok),
``vda.kind`` (job or implementation), ``vda.scenario``, ``vda.config``, ``vda.overrides`` and the environment
tags; the raw latency samples are the history of the metric ``latency_ms`` (one step per call); the worker's
log is attached. The writing itself is :func:`vda.tracking.runs.write`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from vda.backends import BackendConfig
from vda.bench.result import JobResult, Status
from vda.config import to_plain_dict
from vda.tracking import client, runs
from vda.tracking import tags as T
from vda.tracking.sweep import CONFIG_TAG
from vda.tracking.views import BENCH_SUMMARY_METRICS as SUMMARY_METRICS
from vda.tracking.views import BENCH_VIEW

SAMPLES_METRIC = "latency_ms"


def config_label(cfg: Any, result: Optional[JobResult] = None) -> str:
    """What tells a job apart in its sweep: ``sdpa·fp32`` (``·openvino`` off the torch backend); a job whose
    children are the attention implementations (equivalence) is not labelled with one of them."""
    c = to_plain_dict(cfg)
    resolved = result.params if result is not None else {}
    parts = [resolved.get("precision.resolved", c["precision"]["name"])]
    if result is None or not result.children:
        parts.insert(0, c["attention"]["name"])
    if c["backend"]["name"] != BackendConfig.name:  # the default backend is not named
        parts.append(c["backend"]["name"])
    return "·".join(parts)


def job_name(cfg: Any, result: Optional[JobResult] = None) -> str:
    """``sdpa·fp32 | forward vits cpu``; ``xformers·fp32 (unavailable) | forward vits cpu`` when it did not run."""
    c = to_plain_dict(cfg)
    resolved = result.params if result is not None else {}
    device = resolved.get("device.resolved", c["device"]["name"])
    head = config_label(cfg, result)
    if result is not None and result.status is not Status.ok:
        head += f" ({result.status.value})"
    return f"{head} | {c['scenario']['name']} {c['encoder']['name']} {device}"


def run_status(status: Status) -> str:
    """MLflow's own run status: a job that could not run here is a finished measurement, a crash is not."""
    if status is Status.killed:
        return client.KILLED
    return client.FINISHED if status in (Status.ok, Status.unavailable) else client.FAILED


def _record(result: JobResult, name: str, params: dict[str, Any], tags: dict[str, Any]) -> runs.RunRecord:
    return runs.RunRecord(
        name=name,
        status=run_status(result.status),
        tags={**result.tags, **tags, T.STATUS: result.status.value, T.STATUS_REASON: result.reason if result.status is not Status.ok else ""},
        params=params,
        metrics=result.metrics,
        history={SAMPLES_METRIC: result.samples_ms} if result.samples_ms else {},
        start_ms=result.start_ms,
        end_ms=result.end_ms,
    )


def job_record(cfg: Any, result: JobResult, overrides: str = "", log: Optional[Path] = None) -> runs.RunRecord:
    """The job's run (its config as ``config.yaml``, its log when given) with one child run per implementation."""
    params = {**runs.config_params(cfg), **{key: str(value) for key, value in result.params.items()}}
    if result.children:  # the implementations compared are attention.resolved, not the configured one
        params.pop("attention.name", None)
    scenario = str(to_plain_dict(cfg)["scenario"]["name"])
    tags = {T.KIND: "job", T.SCENARIO: scenario, CONFIG_TAG: config_label(cfg, result), T.OVERRIDES: overrides}
    record = _record(result, job_name(cfg, result), params, tags)
    record.texts["config.yaml"] = runs.config_yaml(cfg)
    record.texts.update(result.artifacts)
    if log is not None and log.exists():
        record.artifacts.append(log)
    for child in result.children:
        child.tags = result.tags
        child.start_ms, child.end_ms = child.start_ms or result.start_ms, child.end_ms or result.end_ms
        child_params = {**params, **{key: str(value) for key, value in child.params.items()}}
        child_params["attention.resolved"] = child.params.get("attention.name", "")
        child_tags = {T.KIND: "implementation", T.SCENARIO: scenario, CONFIG_TAG: child.name}
        name = child.name if child.status is Status.ok else f"{child.name} ({child.status.value})"
        record.children.append(_record(child, name, child_params, child_tags))
    return record


__all__ = ["BENCH_VIEW", "SAMPLES_METRIC", "SUMMARY_METRICS", "config_label", "job_name", "job_record", "run_status"]
