"""The body of ``run_infer.py``: check everything, build the model, process the video, track the run.

Everything a user can get wrong (input, output directory, disk space, device, precision, attention) is checked
before the model is built. The video processing itself is :func:`vda.depth.process.process_video`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from omegaconf import MISSING

from vda.errors import ConfigError
from vda.factory import Runtime, assemble, check_mode_backend, runtime_for
from vda.infer import tracked
from vda.infer.config import InferConfig
from vda.paths import resolve_path
from vda.depth.scenes import check_threshold
from vda.outputs.formats import OUTPUTS, check_outputs, enabled_formats, output_bytes_per_frame, output_names
from vda.outputs.writers import check_disk_space, check_existing, check_output_dir
from vda.depth.preprocess import PATCH
from vda.depth.modes import MODES, Clip, Mode
from vda.depth.process import InferResult, process_video
from vda.runtime.signals import stop_on_signals
from vda.tracking import runs
from vda.tracking.sweep import sweep_parent_run_id
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


def load_model(cfg: InferConfig, runtime: Runtime) -> tuple[Any, float]:
    """The runner of ``cfg`` on ``runtime`` (:func:`vda.factory.assemble`) with its load time in seconds
    (graph backends build their graphs on the first window: that time is in the result as ``backend_build_s``)."""
    built = time.perf_counter()
    model = assemble(cfg, runtime)
    return model, time.perf_counter() - built


def run_inference(cfg: InferConfig) -> InferResult:
    """The whole command for one input, from typed settings (``vda.config.to_object`` of the Hydra config).

    With tracking on, the MLflow run is held by a child process started first (:class:`vda.tracking.runs.LiveRun`):
    it imports MLflow and opens the store while this process opens the video and loads the model; the run opens
    before the first frame, and a failure after that leaves a FAILED run. A refusal leaves nothing behind: no run,
    no new output folder.
    """
    check_config(cfg)
    with runs.LiveRun(cfg.mlflow, tracked.INFER_VIEW) if cfg.mlflow.enabled else contextlib.nullcontext() as run:
        mode = MODES.get(cfg.mode.name)
        spec = cfg.input if parse_live(cfg.input) else str(resolve_path(cfg.input))
        clip, frames, close = mode.open(spec, cfg)
        try:
            runtime = runtime_for(cfg)
            check_mode_backend(cfg.mode.name, cfg.backend.name)
            with removed_if_left_empty(resolve_path(cfg.output_dir)) as output_dir:
                check_output_dir(output_dir)
                names = output_names(clip.stem)
                check_existing(output_dir, [names[name] for name in enabled_formats(cfg.output)], cfg.output.overwrite)
                sizes = output_bytes_per_frame(cfg.output, clip.height, clip.width)
                check_disk_space(output_dir, clip.estimated_frames, clip.height, clip.width, sizes)
                if run is None:
                    return _infer(cfg, runtime, clip, frames, mode, output_dir)
                return _tracked(cfg, runtime, spec, clip, frames, mode, output_dir, run)
        finally:
            close()


def _tracked(
    cfg: InferConfig, runtime: Runtime, spec: str, clip: Clip, frames: Iterable[np.ndarray], mode: Mode, output_dir: Path,
    run: runs.LiveRun,
) -> InferResult:
    """Open ``run`` (the child opens it while the model loads), process once it is open, log the result."""
    tags = {**tracked.run_tags(cfg, runtime, hydra_overrides()), "input": spec}
    params = {**runs.config_params(cfg), **tracked.resolved_params(cfg, runtime)}
    name = tracked.run_name(clip.stem, cfg, runtime)
    run.open(name, tags, params, {"config.yaml": runs.config_yaml(cfg)}, sweep_parent_run_id())
    result = _infer(cfg, runtime, clip, frames, mode, output_dir, ready=run.wait)
    preview = OUTPUTS.get("vis").name_for(result.input.stem)
    run.log(tracked.result_metrics(result), [p for p in result.outputs if p.name == preview], tracked.result_tags(result))
    result.run_id, result.where = run.run_id, run.where
    return result


def hydra_overrides() -> str:
    """The command-line overrides of this run (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    return " ".join(HydraConfig.get().overrides.task) if HydraConfig.initialized() else ""


@contextlib.contextmanager
def removed_if_left_empty(path: Path) -> Iterator[Path]:
    """``path``; the folders of it this run creates are removed again when the work fails and leaves them empty."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        yield path
    except BaseException:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):  # not empty, or gone: left as it is
                folder.rmdir()
        raise


def _until(stop: threading.Event, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``frames`` until ``stop`` is set (a live source stopped by the user: the normal end)."""
    for frame in frames:
        if stop.is_set():
            return
        yield frame


def _infer(
    cfg: InferConfig, runtime: Runtime, clip: Clip, frames: Iterable[np.ndarray], mode: Mode, output_dir: Path,
    ready: Callable[[], Any] = lambda: None,
) -> InferResult:
    """Load the model, call ``ready`` (the tracking run is open: a bad store refuses before any frame), process."""
    model, load_seconds = load_model(cfg, runtime)
    ready()
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
        result = process_video(
            model, clip, output_dir, cfg.infer, cfg.output, _until(stop, frames), engine, mode.frame_by_frame
        )
    result.extra["model_load_s"] = load_seconds
    if hasattr(model, "build_s"):
        result.extra["backend_build_s"] = model.build_s
    return result


__all__ = ["check_config", "hydra_overrides", "load_model", "removed_if_left_empty", "run_inference"]
