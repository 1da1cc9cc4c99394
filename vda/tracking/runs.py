"""Runs: written whole from a finished result (:func:`write`), or opened before the work (:class:`LiveRun`).

Every metric goes through the vocabulary (:func:`vda.tracking.vocabulary.rounded`); every tag through
:func:`vda.tracking.tags.clean`. A run carries its true start and end: a result written afterwards passes the
times the work really started and ended.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from vda.config import flatten, to_plain_dict
from vda.runtime.signals import Interrupted
from vda.tracking import tags as T
from vda.tracking.store import ExperimentView, Store, open_store
from vda.tracking.vocabulary import rounded

# MLflow's log_batch limits per request.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_NAME_LENGTH = 250
# MLflow run statuses.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"


def now_ms() -> int:
    return int(time.time() * 1000)


def config_params(cfg: Any) -> dict[str, str]:
    """Flattened resolved config as MLflow params (values cut to MLflow's length limit)."""
    return {k: str(v)[: T.MAX_PARAM_LENGTH] for k, v in flatten(to_plain_dict(cfg)).items()}


def config_yaml(cfg: Any) -> str:
    """The resolved config as YAML, logged as the ``config.yaml`` artifact of every run."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(to_plain_dict(cfg)))


def reason_line(exc: BaseException) -> str:
    """``Type: first line of the message``: the ``status_reason`` of a run that raised ``exc``."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


@dataclass
class RunRecord:
    """Everything one run holds, written in one go by :func:`write` (children nested under it)."""

    name: str
    status: str = FINISHED  # MLflow's run status
    tags: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # Metric -> one value per step (e.g. every latency sample).
    history: dict[str, Sequence[float]] = field(default_factory=dict)
    start_ms: Optional[int] = None
    end_ms: Optional[int] = None
    texts: dict[str, str] = field(default_factory=dict)  # artifact file name -> its text
    artifacts: list[Path] = field(default_factory=list)
    children: list["RunRecord"] = field(default_factory=list)


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
    """``metrics`` (step 0) and ``history`` (one step per value), rounded as the vocabulary says."""
    from mlflow.entities import Metric

    stamp = now_ms()
    items = [Metric(k, rounded(k, v), stamp, 0) for k, v in metrics.items()]
    for key, values in (history or {}).items():
        items += [Metric(key, rounded(key, v), stamp, step) for step, v in enumerate(values)]
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


def write(store: Store, record: RunRecord, parent: Optional[str] = None) -> str:
    """Log ``record`` as one run (nested under ``parent``), its children under it; returns the run id."""
    run_id = create_run(store, record.name, record.tags, parent, record.start_ms)
    log_params(store, run_id, record.params)
    log_metrics(store, run_id, record.metrics, record.history)
    log_artifacts(store, run_id, record.texts, record.artifacts)
    for child in record.children:
        write(store, child, run_id)
    store.client.set_terminated(run_id, record.status, end_time=record.end_ms)
    return run_id


class LiveRun:
    """A run opened in a background thread while the command starts its work (MLflow's import and the store's
    set-up are off the critical path); :meth:`wait` joins it.

    Used as a context manager around the work: the run ends FINISHED, or FAILED (or KILLED when interrupted)
    with the reason in ``status_reason`` when the work raises, so a failure always leaves a FAILED run.
    """

    def __init__(
        self, cfg: Any, view: ExperimentView, name: str, tags: dict[str, Any], params: dict[str, Any],
        texts: dict[str, str], parent: Optional[str] = None,
    ) -> None:
        self.start_ms = now_ms()
        self.store: Optional[Store] = None
        self.run_id: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(
            target=self._open, args=(cfg, view, name, tags, params, texts, parent), name="mlflow-run", daemon=True
        )
        self._thread.start()

    def _open(self, cfg, view, name, tags, params, texts, parent) -> None:
        try:
            self.store = open_store(cfg, view)
            self.run_id = create_run(self.store, name, tags, parent, self.start_ms)
            log_params(self.store, self.run_id, params)
            log_artifacts(self.store, self.run_id, texts)
        except BaseException as exc:  # re-raised in the caller's thread by wait()
            self._error = exc

    def wait(self) -> str:
        """The run's id once it is open; raises what opening it raised (a ConfigError for an unusable store)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.run_id

    def log(self, metrics: dict[str, float], artifacts: Sequence[Path] = (), tags: Optional[dict[str, Any]] = None) -> None:
        run_id = self.wait()
        log_metrics(self.store, run_id, metrics)
        log_artifacts(self.store, run_id, {}, artifacts)
        set_tags(self.store, run_id, tags or {})

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            run_id = self.wait()
            set_tags(self.store, run_id, {T.STATUS: "done"})
            self.store.client.set_terminated(run_id, FINISHED)
            return
        self._thread.join()
        if self._error is not None:
            return  # no run to mark: the work's own exception goes on
        interrupted = isinstance(exc, Interrupted)
        set_tags(self.store, self.run_id, {T.STATUS: "killed" if interrupted else "failed", T.STATUS_REASON: reason_line(exc)})
        self.store.client.set_terminated(self.run_id, KILLED if interrupted else FAILED)


__all__ = [
    "FAILED",
    "FINISHED",
    "KILLED",
    "LiveRun",
    "RunRecord",
    "config_params",
    "config_yaml",
    "create_run",
    "log_artifacts",
    "log_metrics",
    "log_params",
    "now_ms",
    "reason_line",
    "set_tags",
    "write",
]
