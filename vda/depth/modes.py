"""How frames become depth, one record each in :data:`MODES`: ``offline`` (the paper's windowed algorithm over
a whole video) and ``stream`` (the published streaming rule: one depth map per incoming frame, bounded state).

A mode opens its input (:meth:`Mode.open` -> a :class:`Clip` and its frames) and makes the engine that turns
those frames into depth (``engine.run(frames)`` yields float32 maps ``[k, H, W]`` on the model's device, with
``stats`` and ``metrics()``); :func:`vda.depth.process.process_video` does the rest (outputs, staging), the
same for every mode. The ``mode`` Hydra group is generated from this registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
import torch

from vda.depth.engine import EngineStats, WindowedDepth
from vda.depth.scenes import SceneCutDetector, scene_threshold, timed
from vda.registry import Registry
from vda.runtime.timing import LatencyStats, StageTimes
from vda.depth.stream import StreamingDepth
from vda.video.reader import VideoReader, probe
from vda.video.sources import DEFAULT_IMAGE_FPS, LIVE_TIMEOUT_S, open_source


@dataclass(frozen=True)
class Clip:
    """What the outputs need to know about the input: its name, the frame size and rate, the frame count if known."""

    path: Path
    stem: str
    width: int
    height: int
    fps: Fraction
    estimated_frames: Optional[int]
    is_live: bool = False


@dataclass
class ModeConfig:
    name: str = "offline"


@dataclass
class OfflineModeConfig(ModeConfig):
    """The paper's offline algorithm: 32-frame windows every 22 frames, aligned and blended."""

    name: str = "offline"


@dataclass
class StreamModeConfig(ModeConfig):
    """One depth map per incoming frame: a video file, a folder of images, or a live source."""

    name: str = "stream"
    # Keep each frame's key/value projections (same numbers, ~1/32 of the key/value work); false: re-project
    # the 32 context slots every frame, as the published code does.
    cached_projections: bool = True
    # Frame rate written for a folder of images.
    image_fps: float = float(DEFAULT_IMAGE_FPS)
    # Seconds to wait for a live source to open and for each of its packets.
    live_timeout_s: float = LIVE_TIMEOUT_S


class StreamEngine:
    """Stream mode behind the offline engine's interface: ``run(frames)`` yields each frame's depth ``[1, H, W]``.

    With ``scene_threshold`` (see :mod:`vda.depth.scenes`) the temporal state is reset at every shot cut.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        input_size: int,
        cached_projections: bool,
        times: StageTimes,
        scene_threshold: Optional[float] = None,
    ) -> None:
        self.stream = StreamingDepth(model, input_size, cached_projections, times=times)
        self.times = times
        self.scene_threshold = scene_threshold
        self.stats = EngineStats()
        self.step_s: list[float] = []

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        self.stream.reset()
        self.stats, self.step_s = EngineStats(), []
        cut = timed(SceneCutDetector(self.scene_threshold), self.times) if self.scene_threshold is not None else None
        for frame in frames:
            if cut is not None and cut(frame):
                self.stream.reset()
                self.stats.scene_cuts += 1
            depth = self.stream.step_tensor(frame)
            self.step_s.append(self.stream.last_step_s)
            self.stats.frames += 1
            self.stats.encoded_frames += 1
            self.stats.fp32_fallback_windows = self.stream.fp32_fallback_frames  # one frame is the stream's window
            yield depth.unsqueeze(0)

    def metrics(self) -> dict[str, float]:
        """Per-frame latency percentiles (after the first frame), the first frame's time and the state size."""
        metrics = {"stream_state_mib": self.stream.state_bytes / 2**20}
        if self.step_s:
            metrics["first_frame_s"] = self.step_s[0]
        if len(self.step_s) > 1:
            metrics.update(LatencyStats.from_samples([s * 1000.0 for s in self.step_s[1:]]).metrics())
        return metrics


@dataclass(frozen=True)
class Mode:
    schema: type
    # (input path or spec, the config) -> (clip, its frames, a close() for what it holds open)
    open: Callable[[str, Any], tuple[Clip, Iterable[np.ndarray], Callable[[], None]]]
    # (model, the config's infer settings, the mode config, stage times) -> engine
    engine: Callable[[torch.nn.Module, Any, Any, StageTimes], Any]
    # Steps the network one frame at a time with its temporal state: only on a backend that steps frames.
    frame_by_frame: bool = False
    # A folder (or @list) input is a dataset of videos; otherwise the mode reads a folder itself (images).
    datasets: bool = True


def _open_offline(spec: str, cfg: Any) -> tuple[Clip, Iterable[np.ndarray], Callable[[], None]]:
    info = probe(spec, max_res=cfg.infer.max_res, target_fps=cfg.infer.target_fps, max_len=cfg.infer.max_len)
    clip = Clip(info.path, info.stem, info.width, info.height, info.fps, info.estimated_frames)
    return clip, VideoReader(info), lambda: None


def stem_of(name: str) -> str:
    """Output name stem of a source: a file's stem, a folder's name, or a live address made file-safe."""
    if "://" in name or not Path(name).exists():
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:80] or "live"
    return Path(name).stem if Path(name).is_file() else Path(name).name


def _open_stream(spec: str, cfg: Any) -> tuple[Clip, Iterable[np.ndarray], Callable[[], None]]:
    source = open_source(
        spec,
        max_res=cfg.infer.max_res,
        max_len=cfg.infer.max_len,
        target_fps=cfg.infer.target_fps,
        image_fps=Fraction(cfg.mode.image_fps).limit_denominator(1001),
        timeout_s=cfg.mode.live_timeout_s,
    )
    path = Path(spec) if Path(spec).exists() else Path(stem_of(spec))
    clip = Clip(path, stem_of(spec), source.width, source.height, source.fps, source.estimated_frames, source.is_live)
    return clip, source, source.close


def _offline_engine(model: torch.nn.Module, settings: Any, mode: Any, times: StageTimes) -> WindowedDepth:
    return WindowedDepth(model, settings.input_size, settings.feature_cache, times, scene_threshold(settings))


def _stream_engine(model: torch.nn.Module, settings: Any, mode: Any, times: StageTimes) -> StreamEngine:
    return StreamEngine(model, settings.input_size, mode.cached_projections, times, scene_threshold(settings))


MODES: Registry[Mode] = Registry("mode")
MODES.register("offline", Mode(OfflineModeConfig, _open_offline, _offline_engine), help="windowed offline algorithm")
MODES.register(
    "stream", Mode(StreamModeConfig, _open_stream, _stream_engine, frame_by_frame=True, datasets=False), help="frame in, depth out"
)

__all__ = ["MODES", "Clip", "Mode", "ModeConfig", "OfflineModeConfig", "StreamEngine", "StreamModeConfig", "stem_of"]
