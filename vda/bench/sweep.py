"""A multirun is one MLflow parent run with every job nested under it.

:class:`MlflowSweepRun` is a Hydra callback (``hydra.callbacks`` in ``conf/bench.yaml``): at the start of a
multirun it creates the parent run and writes its id into the sweep directory, where every job finds it
(:func:`sweep_parent_run_id`), whether the launcher runs jobs in this process, in joblib workers or on
SLURM nodes sharing the file system. At the end it tags the parent with how many jobs ended in each status.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from vda.bench.recorder import KIND_TAG, experiment_id, status_counts
from vda.tracking import configure, environment_tags

logger = logging.getLogger(__name__)

PARENT_RUN_FILE = "mlflow_parent_run_id"
MAX_NAME_LENGTH = 250


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
        import torch

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
        configure(config.mlflow)
        client = MlflowClient()
        run_id = path.read_text().strip()
        counts = status_counts(client, experiment_id(config.mlflow.experiment), run_id)
        client.log_batch(run_id, tags=[RunTag(f"jobs.{status}", str(n)) for status, n in sorted(counts.items())])
        client.set_terminated(run_id, "FINISHED")


__all__ = ["MlflowSweepRun", "PARENT_RUN_FILE", "sweep_parent_run_id"]
