"""A multirun is one MLflow parent run with every job nested under it, and the parent summarises the sweep.

:class:`SweepRun` is a Hydra callback (``hydra.callbacks`` in ``conf/*.yaml``; each command subclasses it with its
experiment's view). At the start of a multirun it creates the parent run, named after what the sweep varies
(``sweep attention×precision``), and writes its id into the sweep directory, where every job finds it
(:func:`sweep_parent_run_id`), whether the launcher runs jobs in this process, in joblib workers or on SLURM
nodes sharing the file system. At the end it counts the jobs per status (``jobs.<status>`` tags, ``(4 jobs)`` in
the name), logs one summary metric per configuration (``throughput_fps/sdpa-fp32``) and writes the description
(``mlflow.note.content``): a table of the configurations and the best one per metric.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from vda.tracking import client, runs
from vda.tracking import tags as T
from vda.tracking.environment import environment_tags
from vda.tracking.store import ExperimentView, Store, open_store
from vda.tracking.ui import runs_url, where_logged
from vda.tracking.vocabulary import METRICS

logger = logging.getLogger(__name__)

PARENT_RUN_FILE = "mlflow_parent_run_id"
CONFIG_TAG = "vda.config"  # the part of a job's name that tells it apart in its sweep (``sdpa·fp32``)
SWEEP_FUNCTIONS = ("range(", "choice(", "glob(", "interval(", "tag(")


def sweep_parent_run_id() -> Optional[str]:
    """Id of the current multirun's parent run; None outside a multirun or when tracking is off."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    path = Path(hydra_cfg.sweep.dir) / PARENT_RUN_FILE
    return path.read_text().strip() if path.exists() else None


def swept_keys(overrides: list[str]) -> list[str]:
    """The keys a multirun varies: ``["attention=sdpa,math", "precision=fp32"]`` -> ``["attention"]``."""
    keys = []
    for override in overrides:
        key, _, value = override.partition("=")
        if "," in value or value.startswith(SWEEP_FUNCTIONS):
            keys.append(key.lstrip("+~"))
    return keys


def sweep_name(keys: list[str], jobs: Optional[int] = None) -> str:
    """``sweep attention×precision (4 jobs)``."""
    name = "sweep " + "×".join(keys) if keys else "sweep"
    return name if jobs is None else f"{name} ({jobs} job{'s' if jobs != 1 else ''})"


def metric_label(label: str) -> str:
    """A configuration label as MLflow accepts it in a metric name (``sdpa·fp32`` -> ``sdpa-fp32``)."""
    return re.sub(r"[^A-Za-z0-9_\-. :]+", "-", label).strip("-")


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.4g}"


def summarise(jobs: list[Any], metrics: tuple[str, ...]) -> tuple[str, dict[str, float]]:
    """The sweep's description (a Markdown table of its configurations and the best one per metric) and its
    per-configuration summary metrics, from its job runs (``mlflow.entities.Run``)."""
    rows = []
    for run in sorted(jobs, key=lambda r: r.info.start_time or 0):
        label = run.data.tags.get(CONFIG_TAG) or run.info.run_name
        rows.append((label, run.data.tags.get(T.STATUS, "?"), run.data.metrics))
    shown = [m for m in metrics if any(m in values for _, _, values in rows)]
    lines = ["| configuration | status | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
    lines += [f"| {label} | {status} | " + " | ".join(_fmt(values.get(m)) for m in shown) + " |" for label, status, values in rows]
    best = []
    summary: dict[str, float] = {}
    for name in shown:
        measured = [(values[name], label) for label, _, values in rows if name in values]
        for value, label in measured:
            summary[f"{name}/{metric_label(label)}"] = value
        better = METRICS.get(name).better
        if better and measured:
            value, label = (min if better == "lower" else max)(measured)
            best.append(f"- **{name}** ({better} is better): {label} ({_fmt(value)})")
    head = ["Best configuration per metric:", "", *best, ""] if best else []
    note = "\n".join(head + lines)
    return note, summary


class SweepRun(Callback):
    """The parent run of a multirun (see the module docstring); subclasses set :attr:`view` and may
    :meth:`attach` more to the parent and :meth:`announce` the URL."""

    view = ExperimentView("", "")
    # Metrics of the jobs summarised on the parent (those present).
    summary_metrics: tuple[str, ...] = ()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.mlflow.enabled:
            return
        store = open_store(config.mlflow, self.view)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        overrides = list(config.hydra.overrides.task)
        tags = {
            **environment_tags(None),  # each job tags the device it actually used
            T.KIND: "sweep",
            T.OVERRIDES: " ".join(overrides),
            "sweep.dir": str(sweep_dir.resolve()),
        }
        run_id = client.create_run(store, sweep_name(swept_keys(overrides)), tags, None, client.now_ms())
        (sweep_dir / PARENT_RUN_FILE).write_text(run_id)
        logger.info("MLflow parent run %s for the sweep in %s", run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        path = sweep_dir / PARENT_RUN_FILE
        if not config.mlflow.enabled or not path.exists():
            return
        store = open_store(config.mlflow, self.view)
        run_id = path.read_text().strip()
        jobs = store.client.search_runs(
            [store.experiment_id], filter_string=f"tags.`{T.PARENT}` = '{run_id}'", max_results=10000
        )
        counts: dict[str, int] = {}
        for job in jobs:
            status = job.data.tags.get(T.STATUS, "unknown")
            counts[status] = counts.get(status, 0) + 1
        note, summary = summarise(jobs, self.summary_metrics)
        note += self.attach(store, run_id, sweep_dir)
        name = sweep_name(swept_keys(list(config.hydra.overrides.task)), len(jobs))
        client.set_tags(store, run_id, {**{f"{T.SWEEP_JOBS}{s}": n for s, n in counts.items()}, T.NOTE: note, T.RUN_NAME: name})
        runs.log_metrics(store, run_id, summary)
        client.end_run(store, run_id, client.FINISHED)
        self.announce(where_logged(store, runs_url(store, self.view, run_id)))

    def attach(self, store: Store, run_id: str, sweep_dir: Path) -> str:
        """Log more to the parent run ``run_id``; returns Markdown appended to its description."""
        return ""

    def announce(self, line: str) -> None:
        logger.info(line)


__all__ = [
    "CONFIG_TAG",
    "PARENT_RUN_FILE",
    "SweepRun",
    "metric_label",
    "summarise",
    "sweep_name",
    "sweep_parent_run_id",
    "swept_keys",
]
