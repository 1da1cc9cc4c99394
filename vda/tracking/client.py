"""The MLflow calls a run is written with: create it, log its params, metrics, tags and artifacts, end it.

Values are logged as given: metrics are rounded through the vocabulary by the caller (:mod:`vda.tracking.runs`).
Imports neither torch nor MLflow at import time: the process that holds a live run (:mod:`vda.tracking.worker`)
is built on it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Sequence

from vda.tracking import tags as T
from vda.tracking.store import Store

# MLflow's log_batch limits per request.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_NAME_LENGTH = 250
# MLflow run statuses.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"


def now_ms() -> int:
    return int(time.time() * 1000)


def reason_line(exc: BaseException) -> str:
    """``Type: first line of the message``: the ``status_reason`` of a run that raised ``exc``."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def log_params(store: Store, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[: T.MAX_PARAM_LENGTH]) for k, v in params.items()]
    for batch in _chunks(items, MAX_BATCH_PARAMS):
        store.client.log_batch(run_id, params=batch)


def log_metrics(
    store: Store, run_id: str, metrics: dict[str, float], history: Optional[dict[str, Sequence[float]]] = None
) -> None:
    """``metrics`` (step 0) and ``history`` (one step per value), as given."""
    from mlflow.entities import Metric

    stamp = now_ms()
    items = [Metric(k, v, stamp, 0) for k, v in metrics.items()]
    for key, values in (history or {}).items():
        items += [Metric(key, v, stamp, step) for step, v in enumerate(values)]
    for batch in _chunks(items, MAX_BATCH_METRICS):
        store.client.log_batch(run_id, metrics=batch)


def set_tags(store: Store, run_id: str, tags: dict[str, Any]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, v) for k, v in T.clean(tags).items()]
    if items:
        store.client.log_batch(run_id, tags=items)


def log_artifacts(store: Store, run_id: str, texts: dict[str, str], paths: Sequence[Path] = ()) -> None:
    for name, text in texts.items():
        store.client.log_text(run_id, text, name)
    for path in paths:
        store.client.log_artifact(run_id, str(path))


def create_run(store: Store, name: str, tags: dict[str, Any], parent: Optional[str], start_ms: Optional[int]) -> str:
    run_tags = T.clean({**tags, T.PARENT: parent})
    run = store.client.create_run(
        store.experiment_id, start_time=start_ms, tags=run_tags, run_name=name[:MAX_NAME_LENGTH]
    )
    return run.info.run_id


def end_run(store: Store, run_id: str, status: str, end_ms: Optional[int] = None) -> None:
    store.client.set_terminated(run_id, status, end_time=end_ms)


__all__ = [
    "FAILED",
    "FINISHED",
    "KILLED",
    "create_run",
    "end_run",
    "log_artifacts",
    "log_metrics",
    "log_params",
    "now_ms",
    "reason_line",
    "set_tags",
]
