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
from functools import partial
from typing import Any, Callable, Iterator, Optional

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
)
from vda.pipeline.preprocess import PATCH
from vda.pipeline.second_pass import write_second_pass
from vda.pipeline.threads import BackgroundWriter, Prefetcher
from vda.pipeline.transfer import HostCopy, PendingCopy
from vda.pipeline.windows import WINDOW
from vda.runtime.device import resolve_device
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import resolve_precision
from vda.runtime.timing import StageTimes
from vda.tracking import launch_dir
from vda.video.reader import VideoInfo, VideoReader, probe
from vda.video.writer import DEFAULT_PRESET, VideoWriter

logger = logging.getLogger(__name__)

STAGES = ("decode", "preprocess", "encoder", "head", "align", "write")
DECODE_AHEAD = WINDOW  # frames decoded ahead of the model
SRC_AHEAD = WINDOW  # frames queued for the source copy
DEPTH_AHEAD = 1  # windows of depth queued for the scratch file (81 MB each at 720p)


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


def _frames(
    reader: VideoReader, times: StageTimes, copy: Optional[Callable[[np.ndarray], None]]
) -> Iterator[np.ndarray]:
    """Decoded frames, the decode time charged to ``decode``; each frame also goes to ``copy`` (the source copy)."""
    frames = iter(reader)
    try:
        while True:
            with times.stage("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            if copy is not None:
                copy(frame)
            yield frame
    finally:
        frames.close()  # closes the container in the thread that decoded


def process_video(
    model: torch.nn.Module,
    info: VideoInfo,
    output_dir: Path,
    cfg: Any,
    pipelined: bool = True,
) -> InferResult:
    """Run the streaming algorithm over ``info``'s video and write the configured outputs.

    With ``pipelined`` (the default) frames are decoded in a producer thread, and the depth maps (appended
    to the scratch file) and the source copy are written in consumer threads, behind bounded queues, so the
    model's thread waits only for frames it needs; ``pipelined=False`` does everything in the calling thread.
    The stage seconds of ``decode`` and ``write`` are then the busy time of those threads. The second pass
    (npz assembly, preview, png16) runs after the last window, with progress bars behind ``output.progress``.
    """

    def copy_source(frame: np.ndarray) -> None:  # in the source-copy thread
        with src_times.stage("write"):
            src_writer.write(frame)

    def append_depth(depth: PendingCopy) -> None:  # in the depth-store thread
        with store_times.stage("write"):
            store.append(depth.wait())

    names = output_names(info.stem)
    times = StageTimes(device=model.device)  # the model's thread
    decode_times, store_times, src_times = StageTimes(), StageTimes(), StageTimes()  # one per I/O thread
    staging = Staging(output_dir)
    scratch = output_dir / f".{info.stem}_depths.scratch-{os.getpid()}.f32"
    engine = WindowedDepth(model, cfg.infer.input_size, cfg.infer.feature_cache, times)
    preset = cfg.output.get("preset", DEFAULT_PRESET)
    progress = bool(cfg.output.progress)
    host_copy = HostCopy(model.device)
    src_queue = BackgroundWriter(SRC_AHEAD if pipelined else 0, name="vda-src-copy")
    store_queue = BackgroundWriter(DEPTH_AHEAD if pipelined else 0, name="vda-depth-store")
    src_writer: Optional[VideoWriter] = None
    store: Optional[DepthStore] = None
    started = time.perf_counter()
    try:
        with MemoryTracker(model.device) as memory:
            store = DepthStore(scratch, info.height, info.width)
            copy = None
            if cfg.output.src:
                src_writer = VideoWriter(staging.path(names["src"]), info.width, info.height, info.fps, preset=preset)
                copy = partial(src_queue.submit, copy_source)
            decoded = _frames(VideoReader(info), decode_times, copy)
            with tqdm(
                total=info.estimated_frames,
                unit="frame",
                desc=info.stem,
                disable=not progress,
                dynamic_ncols=True,
            ) as bar, Prefetcher(decoded, DECODE_AHEAD if pipelined else 0, name="vda-decode") as frames:
                for depth in engine.run(frames):
                    store_queue.submit(append_depth, host_copy.start(depth))
                    bar.update(len(depth))
            model_done = time.perf_counter()
            src_queue.close()
            store_queue.close()
            with times.stage("write"):
                store.close()
                if src_writer is not None:
                    src_writer.close()
                    src_writer = None
                out = cfg.output
                write_second_pass(
                    store,
                    info.fps,
                    npz=staging.path(names["npz"]) if out.npz else None,
                    vis=staging.path(names["vis"]) if out.vis else None,
                    png16=staging.path(names["png16"]) if out.png16 else None,
                    grayscale=out.grayscale,
                    preset=preset,
                    unit="metres" if model.metric else "relative (inverse depth, arbitrary scale)",
                    progress=progress,
                    desc=info.stem,
                )
                outputs = staging.commit()
    except BaseException:
        src_queue.abort()
        store_queue.abort()
        if src_writer is not None:
            src_writer.abort()
        staging.abort()
        raise
    finally:
        if store is not None:
            store.close()
        scratch.unlink(missing_ok=True)
    finished = time.perf_counter()
    for thread_times in (decode_times, store_times, src_times):
        for stage, seconds in thread_times.seconds.items():
            times.add(stage, seconds)
    peak = {"peak_memory_mb": memory.peak_mb, **memory.details}
    return InferResult(
        input=info.path,
        outputs=outputs,
        frames=engine.stats.frames,
        seconds=finished - started,
        stage_seconds={stage: times.seconds.get(stage, 0.0) for stage in STAGES},
        stats=engine.stats,
        peak_memory=peak,
        extra={"depth_min": store.min, "depth_max": store.max, "seconds_after_model": finished - model_done},
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
