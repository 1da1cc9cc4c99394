"""MLflow tracking shared by inference and benchmarks: store location, run set-up, environment tags."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from vda.config import MlflowConfig, flatten, to_plain_dict

MAX_PARAM_LENGTH = 500


def launch_dir() -> Path:
    """Directory the command was started from (Hydra may have changed into its output folder)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    except ImportError:  # pragma: no cover - hydra is a dependency
        pass
    return Path.cwd()


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
    from vda.runtime.device import device_description

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
