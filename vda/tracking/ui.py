"""The URL a command prints: MLflow's runs table of its experiment, machine-learning view, columns preset.

MLflow's UI opens a *shared view* given by ``viewStateShareKey=KEY`` in its URL: the experiment tag
``mlflow.sharedViewState.KEY`` holds the view as JSON (search filter, sort, the columns shown, which runs the
charts plot). :func:`runs_url` writes that tag (its key is a hash of the view, so the same view is one tag)
and returns the URL; ``workflowType=machine_learning`` makes the UI show runs rather than its GenAI pages.
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from vda.tracking import tags as T
from vda.tracking.store import ExperimentView, Store

DEFAULT_UI = "http://127.0.0.1:5000"  # where ``python -m vda.dashboard`` (and ``mlflow ui``) serves
SHARED_VIEW_TAG = "mlflow.sharedViewState."


def column(kind: str, name: str) -> str:
    """A runs-table column id: ``metrics.`throughput_fps```, ``params.`device.resolved```, ``attributes.`Duration```."""
    return f"{kind}.`{name}`"


def ui_base(uri: str) -> str:
    """The UI of a store: a tracking server serves its own; a local store is served by ``python -m vda.dashboard``."""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else DEFAULT_UI


def view_state(view: ExperimentView, parent_run_id: Optional[str] = None) -> dict:
    """The shared view: the runs nested under ``parent_run_id`` (else every run), newest first, the view's columns,
    every run plotted in the charts. Runs are grouped by ``vda.kind``: the UI then lists a sweep's jobs at once
    instead of folding them under their parent run (the charts still plot every run, not group averages)."""
    search = f"tags.`{T.PARENT}` = '{parent_run_id}'" if parent_run_id else ""
    return {
        "searchFilter": search,
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        "selectedColumns": list(view.columns),
        "runsHiddenMode": "SHOW_ALL",
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": T.KIND}]},
        "useGroupedValuesInCharts": False,
    }


def runs_url(store: Store, view: ExperimentView, parent_run_id: Optional[str] = None, base: Optional[str] = None) -> str:
    """Write the shared view of ``view`` (filtered to a sweep's runs when ``parent_run_id`` is given) into the
    experiment and return the URL that opens it."""
    state = json.dumps(view_state(view, parent_run_id), sort_keys=True)
    key = hashlib.sha256(state.encode()).hexdigest()[:32]
    store.client.set_experiment_tag(store.experiment_id, SHARED_VIEW_TAG + key, state)
    root = base or ui_base(store.uri)
    return f"{root}/#/experiments/{store.experiment_id}/runs?viewStateShareKey={key}&workflowType=machine_learning"


def where_logged(store: Store, url: str) -> str:
    """The two lines every tracked command ends with: the store, and the URL of its runs table."""
    return f"MLflow store: {store.uri} (experiment {store.experiment})\nruns: {url} (serve with: python -m vda.dashboard)"


__all__ = ["DEFAULT_UI", "SHARED_VIEW_TAG", "column", "runs_url", "ui_base", "view_state", "where_logged"]
