"""Writes a :class:`JobResult` to MLflow: one run per job, one nested run per child (implementation).

Params are the flattened resolved config (with the values resolved at run time, e.g. the window shape);
tags are ``status``/``status_reason``, ``vda.kind`` (sweep, job or implementation), ``vda.scenario`` and the
environment tags; the raw latency samples are the history of the metric ``latency_ms`` (one step per call).
"""

from __future__ import annotations

import time
from typing import Any, Optional

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from vda.backends import BackendConfig
from vda.bench.result import JobResult, Status
from vda.config import to_plain_dict
from vda.tracking import KIND_TAG, MAX_PARAM_LENGTH, MAX_TAG_LENGTH, PARENT_TAG, config_params, config_yaml, experiment_id

SCENARIO_TAG = "vda.scenario"
SAMPLES_METRIC = "latency_ms"
# MLflow's log_batch limits per request.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100


def job_name(cfg: Any, result: Optional[JobResult] = None) -> str:
    """``forward vits cpu fp32 sdpa`` (`` openvino`` appended off the default backend): the device and precision
    actually used when the job resolved them.

    A job whose children are the attention implementations (equivalence) is not named after one of them.
    """
    c = to_plain_dict(cfg)
    resolved = result.params if result is not None else {}
    parts = [
        c["scenario"]["name"],
        c["encoder"]["name"],
        resolved.get("device.resolved", c["device"]["name"]),
        resolved.get("precision.resolved", c["precision"]["name"]),
    ]
    if result is None or not result.children:
        parts.append(c["attention"]["name"])
    if c["backend"]["name"] != BackendConfig.name:  # the default backend is not named
        parts.append(c["backend"]["name"])
    return " ".join(parts)


def run_status(status: Status) -> str:
    """MLflow's own run status: a job that could not run here is a finished measurement, a crash is not."""
    if status is Status.killed:
        return "KILLED"
    return "FINISHED" if status in (Status.ok, Status.unavailable) else "FAILED"


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def write_run(
    client: MlflowClient,
    experiment: str,
    name: str,
    result: JobResult,
    params: dict[str, Any],
    tags: dict[str, str],
    parent_run_id: Optional[str] = None,
) -> str:
    all_tags = {
        **result.tags,
        **tags,
        "status": result.status.value,
        "status_reason": result.reason[:MAX_TAG_LENGTH],
    }
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    run = client.create_run(experiment, tags=all_tags, run_name=name)
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, 0) for key, value in result.metrics.items()]
    metrics += [Metric(SAMPLES_METRIC, float(v), now, step) for step, v in enumerate(result.samples_ms)]
    param_list = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in params.items()]
    for batch in _chunks(param_list, MAX_BATCH_PARAMS):
        client.log_batch(run_id, params=batch)
    for batch in _chunks(metrics, MAX_BATCH_METRICS):
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id, run_status(result.status))
    return run_id


def record_job(cfg: Any, result: JobResult, parent_run_id: Optional[str] = None) -> str:
    """Log the job as a run (nested under ``parent_run_id`` when given) and its children under it."""
    client = MlflowClient()
    experiment = experiment_id(cfg.mlflow.experiment)
    params = {**config_params(cfg), **{key: str(value) for key, value in result.params.items()}}
    scenario = str(to_plain_dict(cfg)["scenario"]["name"])
    tags = {KIND_TAG: "job", SCENARIO_TAG: scenario}
    run_id = write_run(client, experiment, job_name(cfg, result), result, params, tags, parent_run_id)
    client.log_text(run_id, config_yaml(cfg), "config.yaml")
    for child in result.children:
        child.tags = result.tags
        child_params = {**params, **{key: str(value) for key, value in child.params.items()}}
        child_tags = {KIND_TAG: "implementation", SCENARIO_TAG: scenario}
        write_run(client, experiment, child.name, child, child_params, child_tags, run_id)
    return run_id


__all__ = [
    "SAMPLES_METRIC",
    "job_name",
    "record_job",
    "write_run",
]
