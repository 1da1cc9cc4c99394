"""One inference run: a video file in, depth files out, one MLflow run.

Everything a user can get wrong (input, output directory, device, precision, attention backend) is checked
before the model is built. Outputs are staged under hidden names and renamed only when all are complete;
on any failure they are removed.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from vda.attention import check_backend
from vda.errors import ConfigError
from vda.pipeline.engine import EngineStats, WindowedDepth
from vda.pipeline.outputs import (
    DepthStore,
    Staging,
    check_disk_space,
    check_output_dir,
    write_png16,
    write_preview,
)
from vda.pipeline.preprocess import PATCH
from vda.runtime.device import resolve_device
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import resolve_precision
from vda.runtime.timing import StageTimes
from vda.tracking import launch_dir
from vda.video.reader import VideoInfo, VideoReader, probe
from vda.video.writer import VideoWriter

logger = logging.getLogger(__name__)

STAGES = ("decode", "preprocess", "encoder", "head", "align", "write")


@dataclass
class InferResult:
    input: Path
    outputs: list[Path]
    frames: int
    seconds: float
    stage_seconds: dict[str, float]
    stats: EngineStats
    peak_memory: dict[str, float]
    run_id: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _name(value: Any) -> str:
    return value.value if isinstance(value, enum.Enum) else str(value)


def resolve_path(value: Any) -> Path:
    """``value`` with ``~`` expanded; a relative path is taken from the launch directory (not Hydra's run dir)."""
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else launch_dir() / path


def output_names(stem: str) -> dict[str, str]:
    return {
        "npz": f"{stem}_depths.npz",
        "vis": f"{stem}_vis.mp4",
        "src": f"{stem}_src.mp4",
        "png16": f"{stem}_depths_png16",
    }


def check_config(cfg: Any) -> None:
    """Values the schema cannot check by type alone."""
    if OmegaConf.is_missing(cfg, "input"):
        raise ConfigError("no input video given; run e.g. python run_infer.py input=video.mp4")
    if cfg.infer.max_len == 0 or cfg.infer.max_len < -1:
        raise ConfigError(
            f"infer.max_len={cfg.infer.max_len} selects no frames; use -1 (all frames) or a positive count"
        )
    if cfg.infer.input_size < PATCH:
        raise ConfigError(f"infer.input_size={cfg.infer.input_size} is below the patch size {PATCH}; use e.g. 518")
    out = cfg.output
    if not (out.npz or out.vis or out.src or out.png16):
        raise ConfigError("every output is switched off (output.npz/vis/src/png16=false); enable at least one")
    if cfg.infer.target_fps == 0:
        raise ConfigError("infer.target_fps=0 is not a frame rate; use -1 (keep the source rate) or a positive value")


def _frames(reader: VideoReader, times: StageTimes, src: Optional[VideoWriter]) -> Iterator[np.ndarray]:
    """Decoded frames, the decode time charged to ``decode`` and the optional source copy to ``write``."""
    frames = iter(reader)
    while True:
        with times.stage("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        if src is not None:
            with times.stage("write"):
                src.write(frame)
        yield frame


def process_video(
    model: torch.nn.Module,
    info: VideoInfo,
    output_dir: Path,
    cfg: Any,
) -> InferResult:
    """Run the streaming algorithm over ``info``'s video and write the configured outputs."""
    names = output_names(info.stem)
    times = StageTimes(device=model.device)
    staging = Staging(output_dir)
    scratch = output_dir / f".{info.stem}_depths.scratch-{os.getpid()}.f32"
    engine = WindowedDepth(model, cfg.infer.input_size, cfg.infer.feature_cache, times)
    src_writer: Optional[VideoWriter] = None
    store: Optional[DepthStore] = None
    started = time.perf_counter()
    try:
        with MemoryTracker(model.device) as memory:
            store = DepthStore(scratch, info.height, info.width)
            if cfg.output.src:
                src_writer = VideoWriter(staging.path(names["src"]), info.width, info.height, info.fps)
            with tqdm(
                total=info.estimated_frames,
                unit="frame",
                desc=info.stem,
                disable=not cfg.output.progress,
                dynamic_ncols=True,
            ) as bar:
                for depth in engine.run(_frames(VideoReader(info), times, src_writer)):
                    with times.stage("write"):
                        store.append(depth.float().cpu().numpy())
                    bar.update(len(depth))
            with times.stage("write"):
                store.close()
                if src_writer is not None:
                    src_writer.close()
                    src_writer = None
                if cfg.output.npz:
                    store.write_npz(staging.path(names["npz"]), info.fps)
                if cfg.output.vis:
                    write_preview(store, staging.path(names["vis"]), info.fps, cfg.output.grayscale)
                if cfg.output.png16:
                    unit = "metres" if model.metric else "relative (inverse depth, arbitrary scale)"
                    write_png16(store, staging.path(names["png16"]), unit)
                outputs = staging.commit()
    except BaseException:
        if src_writer is not None:
            src_writer.abort()
        staging.abort()
        raise
    finally:
        if store is not None:
            store.close()
        scratch.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    peak = {"peak_memory_mb": memory.peak_mb, **memory.details}
    return InferResult(
        input=info.path,
        outputs=outputs,
        frames=engine.stats.frames,
        seconds=seconds,
        stage_seconds={stage: times.seconds.get(stage, 0.0) for stage in STAGES},
        stats=engine.stats,
        peak_memory=peak,
        extra={"depth_min": store.min, "depth_max": store.max},
    )


def _configure_mlflow(cfg: Any) -> None:
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


def _log_to_mlflow(cfg: Any, result: InferResult, device: torch.device, model: torch.nn.Module) -> str:
    import mlflow

    from vda import tracking

    tags = tracking.environment_tags(device)
    tags.update(
        {
            "input": str(result.input),
            "encoder": model.encoder_name,
            "metric": str(model.metric),
            "attention": model.attention_name,
            "precision": model.precision.value,
        }
    )
    checkpoint = str(cfg.model.checkpoint)
    tags["weights"] = {"random": "random", "auto": "official"}.get(checkpoint, checkpoint)
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
    with mlflow.start_run(run_name=result.input.stem) as run:
        mlflow.log_params(tracking.config_params(cfg))
        mlflow.log_text(tracking.config_yaml(cfg), "config.yaml")
        mlflow.set_tags(tags)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in result.outputs:
            if path.name.endswith("_vis.mp4"):
                mlflow.log_artifact(str(path))
        return run.info.run_id


def run_inference(cfg: Any) -> InferResult:
    """The whole command: check inputs, build the model, process the video, track the run."""
    check_config(cfg)
    info = probe(
        resolve_path(cfg.input),
        max_res=cfg.infer.max_res,
        target_fps=cfg.infer.target_fps,
        max_len=cfg.infer.max_len,
    )
    output_dir = check_output_dir(resolve_path(cfg.output_dir))
    check_disk_space(output_dir, info.estimated_frames, info.height, info.width, cfg.output.npz)
    device = resolve_device(_name(cfg.device.name))
    precision = resolve_precision(_name(cfg.precision.name), device)
    check_backend(_name(cfg.attention.name), device, _name(cfg.attention.sdpa_kernel))
    if cfg.mlflow.enabled:
        _configure_mlflow(cfg)

    from vda.model import build_model

    built = time.perf_counter()
    model = build_model(
        encoder=_name(cfg.encoder.name),
        metric=cfg.model.metric,
        attention=_name(cfg.attention.name),
        sdpa_kernel=_name(cfg.attention.sdpa_kernel),
        device=device,
        precision=precision.value,
        checkpoint=cfg.model.checkpoint,
        seed=cfg.model.seed,
    )
    load_seconds = time.perf_counter() - built
    logger.info(
        "%s: %dx%d at %s fps (stride %d), model %s on %s in %s",
        info.path,
        info.width,
        info.height,
        info.fps,
        info.stride,
        model.encoder_name,
        device,
        precision.value,
    )
    result = process_video(model, info, output_dir, cfg)
    result.extra["model_load_seconds"] = load_seconds
    if cfg.mlflow.enabled:
        result.run_id = _log_to_mlflow(cfg, result, device, model)
    return result


__all__ = ["InferResult", "check_config", "output_names", "process_video", "resolve_path", "run_inference"]
