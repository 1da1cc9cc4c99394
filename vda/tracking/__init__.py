"""MLflow tracking for both commands, in one package (MLflow itself is imported only when a run is tracked):

* :mod:`~vda.tracking.store`: the store, its experiments (same ``artifact_location`` rule everywhere), their view;
* :mod:`~vda.tracking.runs`: runs written from a result (true start and end) or opened before the work;
* :mod:`~vda.tracking.tags`: the tag names and the environment tags (CPU model, GPU name, versions);
* :mod:`~vda.tracking.vocabulary`: the one set of metric names, units and precisions;
* :mod:`~vda.tracking.sweep`: a multirun's parent run and its summary;
* :mod:`~vda.tracking.ui`: the URL of the runs table a command prints; ``python -m vda.dashboard`` serves it.
"""

from vda.tracking.runs import LiveRun, RunRecord, config_params, config_yaml, write
from vda.tracking.store import ExperimentView, Store, default_tracking_uri, open_store
from vda.tracking.sweep import SweepRun, sweep_parent_run_id
from vda.tracking.ui import runs_url, where_logged
from vda.tracking.vocabulary import METRICS, rounded

__all__ = [
    "ExperimentView",
    "LiveRun",
    "METRICS",
    "RunRecord",
    "Store",
    "SweepRun",
    "config_params",
    "config_yaml",
    "default_tracking_uri",
    "open_store",
    "rounded",
    "runs_url",
    "sweep_parent_run_id",
    "where_logged",
    "write",
]
