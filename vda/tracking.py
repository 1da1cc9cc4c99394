"""MLflow tracking shared by inference and benchmarks: store location, run set-up, tags, the sweep's parent run.

A multirun is one MLflow parent run with every job nested under it: :class:`MlflowSweepRun` is a Hydra callback
(``hydra.callbacks`` in ``conf/*.yaml``) that creates the parent run at the start of a multirun and writes its
id into the sweep directory, where every job finds it (:func:`sweep_parent_run_id`), whether the launcher runs
jobs in this process, in joblib workers or on SLURM nodes sharing the file system. At the end it tags the
parent with how many jobs ended in each status.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
import logging
from typing import Any, Optional

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from vda.config import MlflowConfig, flatten, to_plain_dict
from vda.paths import launch_dir
from vda.runtime.device import device_description

MAX_PARAM_LENGTH = 500
MAX_TAG_LENGTH = 5000
PARENT_TAG = "mlflow.parentRunId"
KIND_TAG = "vda.kind"
PARENT_RUN_FILE = "mlflow_parent_run_id"
MAX_NAME_LENGTH = 250

logger = logging.getLogger(__name__)


def default_tracking_uri() -> str:
    """``sqlite:///<launch dir>/mlflow.db``: one store per project folder, not one per Hydra run."""
    return f"sqlite:///{(launch_dir() / 'mlflow.db').resolve()}"


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a local sqlite store go beside the database (``mlartifacts/``), not into ``./mlruns``."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None  # a tracking server chooses its own artifact store
    return (Path(tracking_uri[len(prefix) :]).resolve().parent / "mlartifacts").as_uri()


def configure(cfg: MlflowConfig | Any) -> str:
    """Point MLflow at the configured store and experiment; returns the tracking URI used."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = cfg.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(cfg.experiment) is None:
        try:
            mlflow.create_experiment(cfg.experiment, artifact_location=artifact_location(uri))
        except MlflowException:  # created meanwhile by a parallel job
            pass
    mlflow.set_experiment(cfg.experiment)
    return uri


def config_params(cfg: Any) -> dict[str, str]:
    """Flattened resolved config as MLflow params (values cut to MLflow's length limit)."""
    return {k: str(v)[:MAX_PARAM_LENGTH] for k, v in flatten(to_plain_dict(cfg)).items()}


def config_yaml(cfg: Any) -> str:
    """The resolved config as YAML, logged as the ``config.yaml`` artifact of every run."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(to_plain_dict(cfg)))


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_tags(device: torch.device) -> dict[str, str]:
    """Tags that say where a run happened: hardware and library versions."""
    tags = {
        "device": device.type,
        "device_name": device_description(device),
        "cpu": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": str(torch.version.cuda),
    }
    try:
        import xformers

        tags["xformers"] = xformers.__version__
    except ImportError:
        tags["xformers"] = "not installed"
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def experiment_id(name: str) -> str:
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else mlflow.create_experiment(name)


def status_counts(client: Any, experiment: str, parent_run_id: str) -> dict[str, int]:
    """How many runs nested directly under ``parent_run_id`` have each status."""
    runs = client.search_runs([experiment], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'", max_results=10000)
    counts: dict[str, int] = {}
    for run in runs:
        status = run.data.tags.get("status", "unknown")
        counts[status] = counts.get(status, 0) + 1
    return counts


def sweep_parent_run_id() -> Optional[str]:
    """Id of the current multirun's parent run; None outside a multirun or when tracking is off."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    path = Path(hydra_cfg.sweep.dir) / PARENT_RUN_FILE
    return path.read_text().strip() if path.exists() else None


class MlflowSweepRun(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.mlflow.enabled:
            return
        from mlflow.tracking import MlflowClient

        configure(config.mlflow)
        client = MlflowClient()
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        overrides = " ".join(config.hydra.overrides.task)
        tags = {
            **environment_tags(torch.device("cpu")),
            KIND_TAG: "sweep",
            "sweep.dir": str(sweep_dir.resolve()),
            "sweep.overrides": overrides,
        }
        for key in ("device", "device_name"):  # each job tags the device it actually used
            tags.pop(key)
        run = client.create_run(
            experiment_id(config.mlflow.experiment), tags=tags, run_name=f"sweep {overrides}"[:MAX_NAME_LENGTH]
        )
        (sweep_dir / PARENT_RUN_FILE).write_text(run.info.run_id)
        logger.info("MLflow parent run %s for the sweep in %s", run.info.run_id, sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(str(config.hydra.sweep.dir)) / PARENT_RUN_FILE
        if not config.mlflow.enabled or not path.exists():
            return
        from mlflow.entities import RunTag
        from mlflow.tracking import MlflowClient

        configure(config.mlflow)
        client = MlflowClient()
        run_id = path.read_text().strip()
        counts = status_counts(client, experiment_id(config.mlflow.experiment), run_id)
        client.log_batch(run_id, tags=[RunTag(f"jobs.{status}", str(n)) for status, n in sorted(counts.items())])
        client.set_terminated(run_id, "FINISHED")
