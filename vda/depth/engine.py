"""The offline windowed algorithm, streaming, with an encoder-feature cache.

:class:`WindowedDepth` consumes decoded frames lazily and yields depth maps as soon as they are final,
so memory is bounded by a couple of windows whatever the video length. It reproduces the offline
algorithm exactly (same windows, keyframe carry-over, padding, alignment and blending) while encoding
each decoded frame once: the encoder sees frames independently, so the features of the carried-over
keyframe slots and of the padding copies are taken from a small per-frame cache instead of being
recomputed. With ``feature_cache=False`` every window slot goes through the encoder, as in the original
implementation (kept as the baseline of ``benchmarks/bench_pipeline.py``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vda.depth.scenes import SceneCutDetector, ShotSplitter, timed
from vda.errors import NonFiniteOutputError, VideoError
from vda.depth.align import WindowAligner
from vda.depth.preprocess import Preprocessor
from vda.depth.settings import InferSettings
from vda.depth.windows import KEYFRAMES, STRIDE, WINDOW, used_slots, window_slots
from vda.runtime.oom import OOMGuard
from vda.runtime.precision import Precision
from vda.runtime.timing import StageTimes

logger = logging.getLogger(__name__)


class RowBank:
    """Per-frame rows (encoder features, or preprocessed inputs) keyed by decoded-frame index.

    Rows live in one tuple of tensors ``[rows, ...]``; :meth:`retain` drops every frame the next window
    cannot need.
    """

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.tensors: Optional[tuple[torch.Tensor, ...]] = None

    def __contains__(self, key: int) -> bool:
        return key in self.index

    def add(self, keys: Sequence[int], tensors: Sequence[torch.Tensor]) -> None:
        if self.tensors is None:
            base, self.tensors = 0, tuple(tensors)
        else:
            base = self.tensors[0].shape[0]
            self.tensors = tuple(torch.cat([old, new]) for old, new in zip(self.tensors, tensors, strict=True))
        for offset, key in enumerate(keys):
            self.index[key] = base + offset

    def gather(self, keys: Sequence[int]) -> tuple[torch.Tensor, ...]:
        rows = torch.tensor([self.index[k] for k in keys], device=self.tensors[0].device)
        return tuple(t.index_select(0, rows) for t in self.tensors)

    def retain(self, keys: Iterable[int]) -> None:
        keep = sorted(set(keys))
        self.tensors = self.gather(keep)
        self.index = {key: row for row, key in enumerate(keep)}


@dataclass
class EngineStats:
    frames: int = 0  # decoded frames
    windows: int = 0
    encoded_frames: int = 0  # frames that went through the encoder
    fp32_fallback_windows: int = 0  # windows recomputed in float32 because half precision gave NaN/inf
    degenerate_windows: int = 0  # windows aligned with scale 1, shift 0 (flat or inverted depth)
    scene_cuts: int = 0  # shot cuts detected (infer.scene_cuts=true)


class WindowedDepth:
    """Streaming offline algorithm over ``model`` (a :class:`~vda.model.VideoDepthAnything`).

    ``run(frames)`` takes RGB ``uint8`` frames ``[H, W, 3]`` and yields float32 depth maps ``[k, H, W]`` on
    the model's device, in frame order, at the decoded frame size; exactly one map per input frame.
    With ``scene_threshold`` (see :mod:`vda.depth.scenes`) the frames are split at shot cuts and each shot runs
    through the algorithm on its own (own windows, own alignment), so no window spans a cut.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        input_size: int = InferSettings.input_size,
        feature_cache: bool = InferSettings.feature_cache,
        times: Optional[StageTimes] = None,
        scene_threshold: Optional[float] = None,
    ) -> None:
        self.model = model
        self.scene_threshold = scene_threshold
        self.input_size = input_size
        self.feature_cache = feature_cache
        self.times = times if times is not None else StageTimes()
        self.stats = EngineStats()
        self.preprocessor: Optional[Preprocessor] = None
        self.oom = OOMGuard(model, input_size)
        self._fp32_rows = False  # the rows of the window being formed were encoded again in float32

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Time stage ``name``; a graph runner's build (export, conversion, compilation) in it goes to "build"."""
        built = getattr(self.model, "build_s", 0.0)
        with self.times.stage(name):
            yield
        built = getattr(self.model, "build_s", 0.0) - built
        if built:
            self.times.seconds[name] -= built
            self.times.add("build", built)

    def _encode_per_frame(self, x: torch.Tensor, precision: Optional[Precision] = None) -> tuple[torch.Tensor, ...]:
        """The encoder one frame at a time (frames are encoded independently): the out-of-memory retry."""
        rows = [self.model.encode(x[i : i + 1], precision) for i in range(x.shape[0])]
        return tuple(torch.cat(parts) for parts in zip(*rows))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encoder features of ``x``; half-precision features with NaN/inf are recomputed in float32."""
        with self._stage("encoder"), torch.inference_mode():
            features = self.oom.call(self.model.encode, x, smaller=self._encode_per_frame)
            half = self.model.precision is not Precision.fp32
            if half and not torch.stack([torch.isfinite(f).all() for f in features]).all():  # one sync
                self._fp32_rows = True
                features = self.oom.call(self.model.encode, x, Precision.fp32, smaller=self._encode_per_frame)
        return features

    def _new_rows(self, frames: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
        with self.times.stage("preprocess"):
            x = self.preprocessor(frames)
        if not self.feature_cache:
            return (x,)
        features = self._encode(x)
        self.stats.encoded_frames += len(frames)
        return features

    def _window_depth(self, content: tuple[torch.Tensor, ...], slots: int) -> torch.Tensor:
        """Depth [slots, h, w] of the window's first ``slots`` slots (the rest is not used)."""
        if self.feature_cache:
            features = content
        else:
            features = self._encode(content[0])
            self.stats.encoded_frames += WINDOW
        fell_back, self._fp32_rows = self._fp32_rows, False
        patch_hw = self.preprocessor.patch_hw
        with self._stage("head"), torch.inference_mode():
            try:
                decode = functools.partial(self.model.decode, slots=slots)
                depth = self.oom.call(decode, features, 1, WINDOW, patch_hw)
            except NonFiniteOutputError:
                if self.model.precision is Precision.fp32:
                    raise
                fell_back = True
                fp32_decode = functools.partial(self.model.decode, precision=Precision.fp32, slots=slots)
                depth = self.oom.call(fp32_decode, features, 1, WINDOW, patch_hw)
        if fell_back:
            if self.stats.fp32_fallback_windows == 0:
                logger.warning(
                    "%s gave NaN/inf depth; recomputing such windows in float32 (counted in fp32_fallback_windows)",
                    self.model.precision.value,
                )
            self.stats.fp32_fallback_windows += 1
        return depth[0]

    def metrics(self) -> dict[str, float]:
        """Engine-specific figures of the last run, for the run's metrics (none beyond the stats here)."""
        return {}

    def _to_frame_size(self, depth: torch.Tensor, frame_hw: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(depth.unsqueeze(1), size=frame_hw, mode="bilinear", align_corners=True).squeeze(1)

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[torch.Tensor]:
        self.stats = EngineStats()
        if self.scene_threshold is None:
            yield from self._run_shot(iter(frames))
            return
        shots = ShotSplitter(frames, timed(SceneCutDetector(self.scene_threshold), self.times))
        for shot in shots:
            yield from self._run_shot(shot)
        self.stats.scene_cuts = shots.cuts

    def _run_shot(self, source: Iterator[np.ndarray]) -> Iterator[torch.Tensor]:
        """The algorithm over one shot's frames (the whole video when cuts are off), adding to ``stats``."""
        aligner = WindowAligner(metric=self.model.metric)
        bank = RowBank()
        pending: list[np.ndarray] = []  # decoded, not yet in the bank
        decoded, emitted, eof = 0, 0, False
        start, previous = 0, None
        frame_hw: Optional[tuple[int, int]] = None
        while True:
            while not eof and decoded < start + WINDOW:
                frame = next(source, None)
                if frame is None:
                    eof = True
                    break
                if frame_hw is None:
                    frame_hw = frame.shape[:2]
                    self.preprocessor = Preprocessor(frame_hw, self.input_size, self.model.device)
                    logger.info(
                        "frames %dx%d -> network input %dx%d", frame_hw[1], frame_hw[0], *self.preprocessor.size[::-1]
                    )
                pending.append(frame)
                decoded += 1
            if decoded == 0:
                raise VideoError("the video produced no decodable frame")
            if start >= decoded:
                break
            previous = window_slots(start, previous)
            sources = [min(index, decoded - 1) for index in previous]  # padding copies -> last frame
            if pending:
                bank.add(range(decoded - len(pending), decoded), self._new_rows(pending))
                pending = []
            slots = used_slots(start, decoded if eof else None)  # fewer in the last window
            depth = self._window_depth(bank.gather(sources), slots)
            with self.times.stage("align"), torch.inference_mode():
                maps = self._to_frame_size(depth, frame_hw)
                if slots < WINDOW:  # slots past the video's end: the aligner's output drops them
                    maps = torch.cat([maps, maps.new_zeros(WINDOW - slots, *frame_hw)])
                final = aligner.push(maps)
            if eof:
                final = final[: decoded - emitted]
            emitted += len(final)
            self.stats.windows += 1
            yield final
            bank.retain([sources[k] for k in KEYFRAMES] + ([decoded - 1] if eof else []))
            start += STRIDE
        self.stats.frames += decoded
        self.stats.degenerate_windows += aligner.degenerate_windows
        tail = aligner.finish()[: decoded - emitted]
        emitted += len(tail)
        if emitted != decoded:
            raise RuntimeError(f"internal error: {emitted} depth maps for {decoded} frames")
        if len(tail):
            yield tail


__all__ = ["EngineStats", "RowBank", "WindowedDepth"]
