"""Where runs go: the MLflow store, its experiments (one ``artifact_location`` rule for every command), and the
view of an experiment a user lands on.

MLflow is imported inside the functions that use it: a command with ``mlflow.enabled=false`` never imports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vda.errors import ConfigError
from vda.paths import launch_dir
from vda.tracking import tags as T


@dataclass(frozen=True)
class ExperimentView:
    """What a command's experiment looks like in the UI: its description and the columns preset in its runs table
    (``metrics.`name``` / ``params.`name``` / ``tags.`name```, see :mod:`vda.tracking.ui`)."""

    command: str  # the entry script whose experiment this is (tag ``vda.command``)
    description: str
    columns: tuple[str, ...] = ()


def default_tracking_uri() -> str:
    """``sqlite:///<launch dir>/mlflow.db``: one store per project folder, not one per Hydra run."""
    return f"sqlite:///{(launch_dir() / 'mlflow.db').resolve()}"


def tracking_uri(configured: str | None) -> str:
    """The store a command uses: ``mlflow.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the default."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database (``mlartifacts/``), not into ``./mlruns``."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None  # a tracking server chooses its own artifact store
    return (Path(uri[len(prefix) :]).resolve().parent / "mlartifacts").as_uri()


@dataclass
class Store:
    """An open MLflow store and the id of the command's experiment in it."""

    uri: str
    experiment: str
    experiment_id: str
    client: Any = field(repr=False)  # mlflow.MlflowClient


def open_store(cfg: Any, view: ExperimentView) -> Store:
    """Open the store of ``cfg`` (an ``MlflowConfig``) and its experiment (:func:`connect`)."""
    return connect(tracking_uri(cfg.tracking_uri), cfg.experiment, view)


def connect(uri: str, experiment: str, view: ExperimentView) -> Store:
    """Open the store at ``uri`` and its ``experiment``, created on first use with its description and the
    machine-learning view as its default; raises :class:`ConfigError` for an unusable store."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment, uri, view)
    except Exception as exc:  # MLflow raises many types for an unusable store
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(
            f"cannot use the MLflow store {uri} ({type(exc).__name__}: {first}); "
            "fix mlflow.tracking_uri= or pass mlflow.enabled=false"
        ) from exc
    return Store(uri, experiment, experiment_id, client)


def _experiment_id(client: Any, name: str, uri: str, view: ExperimentView) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        tags = {T.NOTE: view.description, T.EXPERIMENT_KIND: T.MACHINE_LEARNING, T.COMMAND: view.command}
        try:
            return client.create_experiment(name, artifact_location=artifact_location(uri), tags=tags)
        except MlflowException:  # created meanwhile by a parallel job
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    return experiment.experiment_id


__all__ = [
    "ExperimentView", "Store", "artifact_location", "connect", "default_tracking_uri", "open_store", "tracking_uri",
]
