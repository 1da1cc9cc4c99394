"""Runs: written whole from a finished result (:func:`write`), or held open during the work by a child process
(:class:`LiveRun`).

Every metric goes through the vocabulary (:func:`vda.tracking.vocabulary.rounded`); every tag through
:func:`vda.tracking.tags.clean`. A run carries its true start and end: a result written afterwards passes the
times the work really started and ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from vda.config import flatten, to_plain_dict
from vda.errors import ConfigError
from vda.runtime.signals import Interrupted
from vda.tracking import client, early, worker
from vda.tracking import tags as T
from vda.tracking.client import (
    FAILED, FINISHED, KILLED, create_run, end_run, log_artifacts, log_params, now_ms, reason_line,
)
from vda.tracking.store import ExperimentView, Store, tracking_uri
from vda.tracking.vocabulary import rounded


def config_params(cfg: Any) -> dict[str, str]:
    """Flattened resolved config as MLflow params (values cut to MLflow's length limit)."""
    return {k: str(v)[: T.MAX_PARAM_LENGTH] for k, v in flatten(to_plain_dict(cfg)).items()}


def config_yaml(cfg: Any) -> str:
    """The resolved config as YAML, logged as the ``config.yaml`` artifact of every run."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(to_plain_dict(cfg)))


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


def rounded_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` rounded as the vocabulary says (a name outside it is refused)."""
    return {key: float(rounded(key, value)) for key, value in metrics.items()}


def log_metrics(
    store: Store, run_id: str, metrics: dict[str, float], history: Optional[dict[str, Sequence[float]]] = None
) -> None:
    """``metrics`` (step 0) and ``history`` (one step per value), rounded as the vocabulary says."""
    steps = {key: [rounded(key, value) for value in values] for key, values in (history or {}).items()}
    client.log_metrics(store, run_id, rounded_metrics(metrics), steps)


def write(store: Store, record: RunRecord, parent: Optional[str] = None) -> str:
    """Log ``record`` as one run (nested under ``parent``), its children under it; returns the run id."""
    run_id = create_run(store, record.name, record.tags, parent, record.start_ms)
    log_params(store, run_id, record.params)
    log_metrics(store, run_id, record.metrics, record.history)
    log_artifacts(store, run_id, record.texts, record.artifacts)
    for child in record.children:
        write(store, child, run_id)
    end_run(store, run_id, record.status, record.end_ms)
    return run_id


class LiveRun:
    """A run held open during the work by a child process (:mod:`vda.tracking.worker`): this process never imports
    MLflow, the child imports it and opens the store on another core while this one opens the video and loads the
    model, and this process's exit does not pay MLflow's teardown.

    ``LiveRun(cfg.mlflow, view)`` takes the child the entry script started early (:mod:`vda.tracking.early`), or
    starts one as soon as the config is known; :meth:`open` sends the run (name,
    tags, params, text artifacts, parent), timed from the start; :meth:`wait` returns its id once it is open and
    raises the child's one-line :class:`ConfigError` otherwise (an unusable store: no run is created).

    Used as a context manager around the work: the run ends FINISHED, or FAILED (KILLED when interrupted) with the
    reason in ``status_reason`` when the work raises, so a failure after :meth:`open` always leaves a FAILED run.
    Left unopened (the command refused first), the child is stopped before it touched the store: nothing is left.
    Exiting waits for the child to say the run has ended (the store is complete), not for the child's own exit.
    """

    def __init__(self, cfg: Any, view: ExperimentView) -> None:
        self.start_ms = now_ms()
        self.uri = tracking_uri(cfg.tracking_uri)
        self.experiment = cfg.experiment
        self.view = view
        self.run_id: Optional[str] = None
        self.where: Optional[str] = None  # the two lines a tracked command ends with (vda.tracking.ui.where_logged)
        self._opened = False
        self._pending: list[str] = []  # requests sent and not answered yet, oldest first
        self._process = early.take()
        if self._process is None:
            self._process = early.start_worker()
        else:
            self._pending.append("prepare")  # the early one's, for the store the command line named
        self._send({"op": "prepare", "uri": self.uri})  # it imports MLflow meanwhile

    def open(
        self, name: str, tags: dict[str, Any], params: dict[str, Any], texts: dict[str, str], parent: Optional[str] = None
    ) -> None:
        """Send the run to the child; it opens once MLflow is imported (:meth:`wait`)."""
        self._opened = True
        self._send({
            "op": "open", "uri": self.uri, "experiment": self.experiment, "view": dataclasses.asdict(self.view),
            "name": name, "tags": T.clean(tags), "params": {k: str(v) for k, v in params.items()}, "texts": texts,
            "parent": parent, "start_ms": self.start_ms,
        })

    def wait(self) -> Optional[str]:
        """The run's id once it is open; raises the child's one-line :class:`ConfigError` when it cannot be."""
        while self._pending:
            self._receive()
        return self.run_id

    def log(self, metrics: dict[str, float], artifacts: Sequence[Path] = (), tags: Optional[dict[str, Any]] = None) -> None:
        self.wait()
        paths = [str(Path(path).resolve()) for path in artifacts]
        self._send({"op": "log", "metrics": rounded_metrics(metrics), "artifacts": paths, "tags": T.clean(tags or {})})
        self.wait()

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self._opened:
                self._process.kill()  # it has not touched the store
            elif exc is None:
                self._end(FINISHED, {T.STATUS: "done"})
            else:
                killed = isinstance(exc, (Interrupted, KeyboardInterrupt))
                reason = {T.STATUS: "killed" if killed else "failed", T.STATUS_REASON: reason_line(exc)}
                with contextlib.suppress(ConfigError):  # no run, or the child is gone: the work's own exception goes on
                    self._end(KILLED if killed else FAILED, reason)
        finally:
            self._close()

    def _end(self, status: str, tags: dict[str, str]) -> None:
        if self.wait() is None:
            return  # refused when it opened: there is no run (the refusal was raised then)
        self._send({"op": "end", "status": status, "tags": tags})
        self.wait()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise ConfigError(self._ended_line()) from None
        self._pending.append(message["op"])

    def _receive(self) -> None:
        """Read the answer to the oldest request."""
        line = self._process.stdout.readline()
        if not line:
            self._pending.clear()
            raise ConfigError(self._ended_line())
        reply = json.loads(line)
        op = self._pending.pop(0)
        if "error" in reply:
            raise ConfigError(reply["error"])
        if op == "open":
            self.run_id, self.where = reply["run_id"], reply["where"]

    def _ended_line(self) -> str:
        status = self._process.wait()
        return (
            f"the MLflow run process ({worker.__name__}) ended unexpectedly with exit status {status} (its error is "
            "above); pass mlflow.enabled=false to run without tracking"
        )

    def _close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        self._process.stdout.close()
        self._process.wait()  # it exits as soon as the run has ended


__all__ = ["LiveRun", "RunRecord", "config_params", "config_yaml", "log_metrics", "rounded_metrics", "write"]
