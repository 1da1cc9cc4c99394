"""The body of ``run_infer.py``: check everything, build the model, process the video, track the run.

Everything a user can get wrong (input, output directory, disk space, device, precision, attention) is checked
before the model is built. The video processing itself is :func:`vda.pipeline.video.process_video`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import OmegaConf

from vda.errors import ConfigError
from vda.factory import Runtime, create_model, resolve_runtime
from vda.pipeline.config import InferConfig
from vda.pipeline.formats import OUTPUTS, enabled_formats
from vda.pipeline.outputs import check_disk_space, check_output_dir
from vda.pipeline.preprocess import PATCH
from vda.pipeline.video import InferResult, process_video
from vda.tracking import launch_dir
from vda.video.reader import probe

logger = logging.getLogger(__name__)


def resolve_path(value: Any) -> Path:
    """``value`` with ``~`` expanded; a relative path is taken from the launch directory (not Hydra's run dir)."""
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else launch_dir() / path


def check_config(cfg: InferConfig) -> None:
    """Values the schema cannot check by type alone."""
    if OmegaConf.is_missing(OmegaConf.structured(cfg), "input"):
        raise ConfigError("no input video given; run e.g. python run_infer.py input=video.mp4")
    if cfg.infer.max_len == 0 or cfg.infer.max_len < -1:
        raise ConfigError(
            f"infer.max_len={cfg.infer.max_len} selects no frames; use -1 (all frames) or a positive count"
        )
    if cfg.infer.input_size < PATCH:
        raise ConfigError(f"infer.input_size={cfg.infer.input_size} is below the patch size {PATCH}; use e.g. 518")
    if not enabled_formats(cfg.output):
        switches = "/".join(OUTPUTS.names())
        raise ConfigError(f"every output is switched off (output.{switches}=false); enable at least one")
    if cfg.infer.target_fps == 0:
        raise ConfigError("infer.target_fps=0 is not a frame rate; use -1 (keep the source rate) or a positive value")


def configure_mlflow(cfg: InferConfig) -> None:
    """Point MLflow at its store before any work, so a bad store fails fast."""
    from vda import tracking

    try:
        tracking.configure(cfg.mlflow)
    except Exception as exc:  # MLflow raises many types for an unusable store
        raise ConfigError(
            f"cannot use the MLflow store {cfg.mlflow.tracking_uri or tracking.default_tracking_uri()} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "fix mlflow.tracking_uri= or pass mlflow.enabled=false"
        ) from exc


def run_tags(cfg: InferConfig, runtime: Runtime, model: torch.nn.Module) -> dict[str, str]:
    """MLflow tags of every video a model processes: where it ran, the network, the weights."""
    from vda import tracking

    tags = tracking.environment_tags(runtime.device)
    tags.update(
        {
            "encoder": model.encoder_name,
            "metric": str(model.metric),
            "attention": model.attention_name,
            "precision": model.precision.value,
        }
    )
    checkpoint = str(cfg.model.checkpoint)
    tags["weights"] = {"random": "random", "auto": "official"}.get(checkpoint, checkpoint)
    return tags


def log_to_mlflow(
    cfg: InferConfig, result: InferResult, tags: dict[str, str], parent_run_id: Optional[str] = None
) -> str:
    """One MLflow run for one processed video (nested under ``parent_run_id`` when given); returns its id."""
    import mlflow

    from vda import tracking
    from vda.bench.recorder import PARENT_TAG

    tags = {**tags, "input": str(result.input), "status": "done"}
    if parent_run_id:
        tags[PARENT_TAG] = parent_run_id
    metrics = {
        "frames": result.frames,
        "seconds": result.seconds,
        "fps": result.fps,
        "windows": result.stats.windows,
        "encoded_frames": result.stats.encoded_frames,
        **{f"seconds_{stage}": value for stage, value in result.stage_seconds.items()},
        **result.peak_memory,
        **result.extra,
    }
    with mlflow.start_run(run_name=result.input.stem, tags=tags) as run:
        mlflow.log_params(tracking.config_params(cfg))
        mlflow.log_text(tracking.config_yaml(cfg), "config.yaml")
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in result.outputs:
            if path.name == OUTPUTS.get("vis").name_for(result.input.stem):
                mlflow.log_artifact(str(path))
        return run.info.run_id


def check_runtime(cfg: InferConfig) -> Runtime:
    """Resolve (and check) device, precision and attention before anything is built."""
    return resolve_runtime(cfg.device.name, cfg.precision.name, cfg.attention.name, cfg.attention.sdpa_kernel)


def load_model(cfg: InferConfig, runtime: Runtime) -> tuple[torch.nn.Module, float]:
    """Build the model on ``runtime``; returns it with its load time in seconds."""
    built = time.perf_counter()
    model = create_model(runtime, cfg.encoder.name, cfg.model.metric, cfg.model.checkpoint, cfg.model.seed)
    return model, time.perf_counter() - built


def run_inference(cfg: InferConfig) -> InferResult:
    """The whole command for one input, from typed settings (``vda.config.to_object`` of the Hydra config)."""
    check_config(cfg)
    info = probe(
        resolve_path(cfg.input),
        max_res=cfg.infer.max_res,
        target_fps=cfg.infer.target_fps,
        max_len=cfg.infer.max_len,
    )
    output_dir = check_output_dir(resolve_path(cfg.output_dir))
    check_disk_space(output_dir, info.estimated_frames, info.height, info.width, cfg.output.npz)
    runtime = check_runtime(cfg)
    if cfg.mlflow.enabled:
        configure_mlflow(cfg)
    model, load_seconds = load_model(cfg, runtime)
    logger.info(
        "%s: %dx%d at %s fps (stride %d), model %s on %s in %s",
        info.path,
        info.width,
        info.height,
        info.fps,
        info.stride,
        model.encoder_name,
        runtime.device,
        runtime.precision.value,
    )
    result = process_video(model, info, output_dir, cfg.infer, cfg.output)
    result.extra["model_load_seconds"] = load_seconds
    if cfg.mlflow.enabled:
        from vda.bench.sweep import sweep_parent_run_id

        result.run_id = log_to_mlflow(cfg, result, run_tags(cfg, runtime, model), sweep_parent_run_id())
    return result


__all__ = [
    "check_config",
    "check_runtime",
    "configure_mlflow",
    "load_model",
    "log_to_mlflow",
    "resolve_path",
    "run_inference",
    "run_tags",
]
