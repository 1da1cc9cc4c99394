"""The process that holds the MLflow run of a :class:`~vda.tracking.runs.LiveRun`: ``python -m vda.tracking.worker``.

A tracked command starts it as soon as it knows its config. While the command opens the video and loads the model,
this process imports MLflow (seconds of pure Python) on another core, then opens the store and the run; the command
itself never imports MLflow, and its exit does not pay MLflow's interpreter teardown. It imports neither torch nor
the model.

Protocol: one JSON object per line. The command sends requests on stdin, each answered by one line on stdout: ``{}``
(``open``: ``{"run_id": ..., "where": ...}``) or ``{"error": "one line"}``.

* ``prepare``: the store's URI, sent at once. MLflow and the modules of that kind of store are imported (most of
  the time this process takes), without connecting: nothing is created before ``open``.
* ``open``: the store's URI and experiment, the experiment's view, the run's name, tags, params, text artifacts,
  parent run and start time. An unusable store answers the :class:`~vda.errors.ConfigError` line and creates no
  run; after a failed ``open`` the process exits.
* ``log``: metrics (rounded by the command), artifact paths, tags.
* ``end``: the final status and tags (``status``, ``status_reason``); the run ends and the process exits.

SIGINT and SIGTERM are ignored (the command decides the status and says so); when stdin ends without ``end``, or an
answer finds no reader (the command was killed), an open run ends KILLED with :data:`ORPHANED` as its reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import Any, Callable, Optional
from urllib.parse import urlparse

from vda.errors import VDAError
from vda.tracking import client
from vda.tracking import tags as T
from vda.tracking.store import ExperimentView, Store, connect
from vda.tracking.ui import runs_url, where_logged

ORPHANED = "the command ended without ending its run (killed)"


class HeldRun:
    """The store and the run this process holds (``run_id`` None before ``open`` and after ``end``)."""

    def __init__(self) -> None:
        self.store: Optional[Store] = None
        self.run_id: Optional[str] = None
        self.opened = False  # ``open`` was asked

    @property
    def over(self) -> bool:
        """The run has ended, or it could not be opened: nothing is left to do."""
        return self.opened and self.run_id is None

    def prepare(self, message: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(Exception):  # a failed import is reported by ``open``, with the store's URI
            import mlflow.tracking  # noqa: F401
            from mlflow.store.db.db_types import DATABASE_ENGINES

            if urlparse(message["uri"]).scheme.partition("+")[0] in DATABASE_ENGINES:
                import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (SQLAlchemy and the ORM: a second)
        return {}

    def open(self, message: dict[str, Any]) -> dict[str, Any]:
        self.opened = True
        view = ExperimentView(**{**message["view"], "columns": tuple(message["view"]["columns"])})
        self.store = connect(message["uri"], message["experiment"], view)
        self.run_id = client.create_run(self.store, message["name"], message["tags"], message["parent"], message["start_ms"])
        try:
            client.log_params(self.store, self.run_id, message["params"])
            client.log_artifacts(self.store, self.run_id, message["texts"])
            where = where_logged(self.store, runs_url(self.store, view, message["parent"]))
        except Exception as exc:  # the run exists: it says why it stopped
            self.end({"status": client.FAILED, "tags": {T.STATUS: "failed", T.STATUS_REASON: client.reason_line(exc)}})
            raise
        return {"run_id": self.run_id, "where": where}

    def log(self, message: dict[str, Any]) -> dict[str, Any]:
        client.log_metrics(self.store, self.run_id, message["metrics"])
        client.log_artifacts(self.store, self.run_id, {}, message["artifacts"])
        client.set_tags(self.store, self.run_id, message["tags"])
        return {}

    def end(self, message: dict[str, Any]) -> dict[str, Any]:
        client.set_tags(self.store, self.run_id, message["tags"])
        client.end_run(self.store, self.run_id, message["status"])
        self.run_id = None
        return {}


REQUESTS: dict[str, Callable[[HeldRun, dict[str, Any]], dict[str, Any]]] = {
    "prepare": HeldRun.prepare,
    "open": HeldRun.open,
    "log": HeldRun.log,
    "end": HeldRun.end,
}


def error_line(op: str, exc: Exception) -> str:
    """The one line the command raises as a :class:`~vda.errors.ConfigError`."""
    if isinstance(exc, VDAError):
        return str(exc).splitlines()[0]
    return f"MLflow failed to {op} the run ({client.reason_line(exc)}); pass mlflow.enabled=false to run without tracking"


def serve(requests, replies) -> None:
    """Answer the requests read from ``requests`` on ``replies`` until the run ends or fails to open; a run still
    open when ``requests`` ends, or when ``replies`` has no reader any more, is marked KILLED."""
    run = HeldRun()
    for line in requests:
        message = json.loads(line)
        try:
            reply = REQUESTS[message["op"]](run, message)
        except Exception as exc:
            reply = {"error": error_line(message["op"], exc)}
        try:
            replies.write(json.dumps(reply) + "\n")
            replies.flush()
        except BrokenPipeError:  # the command is gone (killed before it read the answer)
            break
        if run.over:
            return
    if run.run_id is not None:
        run.end({"status": client.KILLED, "tags": {T.STATUS: "killed", T.STATUS_REASON: ORPHANED}})


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever MLflow prints cannot garble a reply
    serve(sys.stdin, replies)
    sys.stderr.flush()
    os._exit(0)  # nothing is left to flush: MLflow's interpreter teardown would only add a second


__all__ = ["ORPHANED", "REQUESTS", "HeldRun", "error_line", "main", "serve"]


if __name__ == "__main__":
    main()

