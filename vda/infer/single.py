"""The body of ``run_infer.py``: check everything, build the model, process the video, track the run.

Everything a user can get wrong (input, output directory, disk space, device, precision, attention) is checked
before the model is built. The video processing itself is :func:`vda.depth.process.process_video`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
from omegaconf import MISSING

from vda.errors import ConfigError
from vda.factory import Runtime, assemble, check_mode_backend, runtime_for
from vda.infer.config import InferConfig
from vda import tracking
from vda.paths import resolve_path
from vda.depth.scenes import check_threshold
from vda.outputs.formats import OUTPUTS, check_outputs, enabled_formats, output_bytes_per_frame, output_names
from vda.outputs.writers import check_disk_space, check_existing, check_output_dir
from vda.depth.preprocess import PATCH
from vda.depth.modes import MODES, Clip, Mode
from vda.depth.process import InferResult, process_video
from vda.runtime.signals import Interrupted, stop_on_signals
from vda.video.sources import parse_live
from vda.video.writer import check_preset

logger = logging.getLogger(__name__)


def check_config(cfg: InferConfig) -> None:
    """Values the schema cannot check by type alone."""
    if cfg.input in (MISSING, ""):
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
    check_preset(cfg.output.preset)
    check_outputs(cfg.output, cfg.model.metric)
    check_threshold(cfg.infer.scene_threshold)


def configure_mlflow(cfg: InferConfig) -> None:
    """Point MLflow at its store before any work, so a bad store fails fast."""
    try:
        tracking.configure(cfg.mlflow)
    except Exception as exc:  # MLflow raises many types for an unusable store
        raise ConfigError(
            f"cannot use the MLflow store {cfg.mlflow.tracking_uri or tracking.default_tracking_uri()} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "fix mlflow.tracking_uri= or pass mlflow.enabled=false"
        ) from exc


def run_tags(cfg: InferConfig, runtime: Runtime) -> dict[str, str]:
    """MLflow tags of every video a configuration processes: where it runs, the network, the weights."""
    tags = tracking.environment_tags(runtime.device)
    tags.update(
        {
            "encoder": cfg.encoder.name,
            "metric": str(cfg.model.metric),
            "attention": runtime.attention.name,
            "precision": runtime.precision.value,
            "backend": cfg.backend.name,
        }
    )
    checkpoint = str(cfg.model.checkpoint)
    tags["weights"] = {"random": "random", "auto": "official"}.get(checkpoint, checkpoint)
    return tags


@contextlib.contextmanager
def tracked_run(cfg: InferConfig, name: str, tags: dict[str, str], parent_run_id: Optional[str] = None) -> Iterator[str]:
    """One video's MLflow run, started before its work: the run ends FINISHED, FAILED (with the reason as the
    ``status_reason`` tag) or KILLED (interrupted); nested under ``parent_run_id`` when given."""
    import mlflow

    tags = {**tags, **({tracking.PARENT_TAG: parent_run_id} if parent_run_id else {})}
    run = mlflow.start_run(run_name=name, tags=tags)
    try:
        mlflow.log_params(tracking.config_params(cfg))
        mlflow.log_text(tracking.config_yaml(cfg), "config.yaml")
        yield run.info.run_id
    except BaseException as exc:
        interrupted = isinstance(exc, Interrupted)
        reason = (str(exc).splitlines() or [""])[0]
        mlflow.set_tags({"status": "killed" if interrupted else "failed", "status_reason": f"{type(exc).__name__}: {reason}"[:tracking.MAX_TAG_LENGTH]})
        mlflow.end_run("KILLED" if interrupted else "FAILED")
        raise
    mlflow.set_tag("status", "done")
    mlflow.end_run("FINISHED")


def log_result(result: InferResult) -> None:
    """Metrics and the preview of a processed video, into the active run."""
    import mlflow

    metrics = {
        "frames": result.frames,
        "seconds": result.seconds,
        "fps": result.fps,
        "windows": result.stats.windows,
        "encoded_frames": result.stats.encoded_frames,
        "fp32_fallback_windows": result.stats.fp32_fallback_windows,
        "degenerate_windows": result.stats.degenerate_windows,
        **{f"seconds_{stage}": value for stage, value in result.stage_seconds.items()},
        **result.peak_memory,
        **result.extra,
    }
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    mlflow.set_tag("outputs", ",".join(path.name for path in result.outputs))
    for path in result.outputs:
        if path.name == OUTPUTS.get("vis").name_for(result.input.stem):
            mlflow.log_artifact(str(path))


def load_model(cfg: InferConfig, runtime: Runtime) -> tuple[Any, float]:
    """The runner of ``cfg`` on ``runtime`` (:func:`vda.factory.assemble`) with its load time in seconds
    (graph backends build their graphs on the first window: that time is in the result as ``backend_build_s``)."""
    built = time.perf_counter()
    model = assemble(cfg, runtime)
    return model, time.perf_counter() - built


def run_inference(cfg: InferConfig) -> InferResult:
    """The whole command for one input, from typed settings (``vda.config.to_object`` of the Hydra config)."""
    check_config(cfg)
    mode = MODES.get(cfg.mode.name)
    spec = cfg.input if parse_live(cfg.input) else str(resolve_path(cfg.input))
    clip, frames, close = mode.open(spec, cfg)
    try:
        output_dir = check_output_dir(resolve_path(cfg.output_dir))
        names = output_names(clip.stem)
        check_existing(output_dir, [names[name] for name in enabled_formats(cfg.output)], cfg.output.overwrite)
        sizes = output_bytes_per_frame(cfg.output, clip.height, clip.width)
        check_disk_space(output_dir, clip.estimated_frames, clip.height, clip.width, sizes)
        runtime = runtime_for(cfg)
        check_mode_backend(cfg.mode.name, cfg.backend.name)
        if not cfg.mlflow.enabled:
            return _infer(cfg, runtime, clip, frames, mode, output_dir)
        configure_mlflow(cfg)
        tags = {**run_tags(cfg, runtime), "input": spec, "mode": cfg.mode.name}
        with tracked_run(cfg, clip.stem, tags, tracking.sweep_parent_run_id()) as run_id:
            result = _infer(cfg, runtime, clip, frames, mode, output_dir)
            log_result(result)
            result.run_id = run_id
        return result
    finally:
        close()


def _until(stop: threading.Event, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``frames`` until ``stop`` is set (a live source stopped by the user: the normal end)."""
    for frame in frames:
        if stop.is_set():
            return
        yield frame


def _infer(
    cfg: InferConfig, runtime: Runtime, clip: Clip, frames: Iterable[np.ndarray], mode: Mode, output_dir: Path
) -> InferResult:
    model, load_seconds = load_model(cfg, runtime)
    logger.info(
        "%s: %dx%d at %s fps, %s mode, model %s on %s in %s",
        clip.path,
        clip.width,
        clip.height,
        clip.fps,
        cfg.mode.name,
        model.encoder_name,
        runtime.device,
        runtime.precision.value,
    )

    def engine(times):
        return mode.engine(model, cfg.infer, cfg.mode, times)

    with stop_on_signals() if clip.is_live else contextlib.nullcontext(threading.Event()) as stop:
        frames = _until(stop, frames)
        result = process_video(model, clip, output_dir, cfg.infer, cfg.output, frames, engine, mode.frame_by_frame)
    result.extra["model_load_seconds"] = load_seconds
    if hasattr(model, "build_s"):
        result.extra["backend_build_s"] = model.build_s
    return result


__all__ = [
    "check_config",
    "configure_mlflow",
    "load_model",
    "log_result",
    "run_inference",
    "run_tags",
    "tracked_run",
]
