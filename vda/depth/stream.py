"""Streaming depth: one depth map per incoming frame, constant latency and memory (the training-free rule).

:class:`StreamingDepth` runs the encoder and the head on each new frame alone; the head's 8 temporal
attention blocks attend over a bounded list of earlier frames (frame 0 kept for ever, then
:func:`context_frames`), held by a :class:`~vda.model.temporal.StreamCache`. There is no scale/shift alignment
between frames; a metric checkpoint runs the same way.

    stream = StreamingDepth(model, input_size=518)
    for frame in frames:                 # RGB uint8 [H, W, 3]
        depth = stream.step(frame)       # float32 [H, W]
        latency = stream.last_step_s
    stream.reset()                       # next scene
"""

from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from vda.errors import InputShapeError, NonFiniteOutputError
from vda.model.temporal import STREAM_ROWS, StreamCache, context_frames, stream_list
from vda.depth.preprocess import Preprocessor
from vda.depth.settings import InferSettings
from vda.runtime.device import synchronize
from vda.runtime.precision import Precision
from vda.runtime.timing import StageTimes

logger = logging.getLogger(__name__)


class StreamingDepth:
    """Frame-in, depth-out over ``model`` (a :class:`~vda.model.VideoDepthAnything`).

    ``cached_projections`` (default) keeps each frame's key/value projections and adds the projected
    positional table per slot (same numbers up to rounding, ~1/32 of the key/value work); ``False``
    re-projects the 32 context slots every step, as published. ``cache`` replaces the temporal state
    altogether (e.g. a reference implementation in the tests).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        input_size: int = InferSettings.input_size,
        cached_projections: bool = True,
        cache: Optional[StreamCache] = None,
        times: Optional[StageTimes] = None,
    ) -> None:
        self.model = model
        # seconds per stage (preprocess, encoder, head); pass a StageTimes with a device to charge queued work
        self.times = times if times is not None else StageTimes()
        self.input_size = input_size
        self.cache = cache if cache is not None else StreamCache(cached_projections)
        self.preprocessor: Optional[Preprocessor] = None
        self.frame_hw: Optional[tuple[int, int]] = None
        self.last_step_s = float("nan")  # wall seconds of the latest step, device synchronised
        self.fp32_fallback_frames = 0  # frames recomputed in float32 because half precision gave NaN/inf

    @property
    def frames(self) -> int:
        """Frames processed since the start or the last :meth:`reset`."""
        return self.cache.frame

    @property
    def state_bytes(self) -> int:
        """Bytes held by the temporal state (bounded: it stops growing after the first frame)."""
        return self.cache.nbytes

    def reset(self) -> None:
        """Forget every frame: the next one starts a new scene (and may have another size)."""
        self.cache.reset()
        self.preprocessor, self.frame_hw = None, None
        self.last_step_s = float("nan")

    def _check(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputShapeError(
                f"stream frame {self.frames}: expected RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}"
            )
        if self.frame_hw is None:
            self.frame_hw = frame.shape[:2]
            self.preprocessor = Preprocessor(self.frame_hw, self.input_size, self.model.device)
        elif frame.shape[:2] != self.frame_hw:
            raise InputShapeError(
                f"stream frame {self.frames} is {frame.shape[1]}x{frame.shape[0]} but the stream started at "
                f"{self.frame_hw[1]}x{self.frame_hw[0]}; call reset() before a frame of another size"
            )

    def step_tensor(self, frame: np.ndarray) -> torch.Tensor:
        """Like :meth:`step`, leaving the depth on the model's device: float32 ``[H, W]``."""
        self._check(frame)
        device = self.model.device
        synchronize(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            with self.times.stage("preprocess"):
                x = self.preprocessor([frame])  # [1, 3, h, w]
            with self.times.stage("encoder"):
                features = self.model.encode(x)
            with self.times.stage("head"):
                try:
                    depth = self.model.decode(features, 1, 1, self.preprocessor.patch_hw, stream=self.cache)
                except NonFiniteOutputError:
                    if self.model.precision is Precision.fp32:
                        raise
                    depth = self._fp32_step(x)
                depth = F.interpolate(depth[0].unsqueeze(1), size=self.frame_hw, mode="bilinear", align_corners=True)
        synchronize(device)
        self.last_step_s = time.perf_counter() - t0
        return depth[0, 0]

    def _fp32_step(self, x: torch.Tensor) -> torch.Tensor:
        """The frame again in float32 after half precision gave NaN/inf (the stream was not advanced)."""
        if self.fp32_fallback_frames == 0:
            logger.warning(
                "%s gave NaN/inf depth; recomputing such frames in float32 (counted in fp32_fallback_frames)",
                self.model.precision.value,
            )
        self.fp32_fallback_frames += 1
        features = self.model.encode(x, Precision.fp32)
        return self.model.decode(features, 1, 1, self.preprocessor.patch_hw, stream=self.cache, precision=Precision.fp32)

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Depth of the next frame of the stream: RGB ``uint8`` ``[H, W, 3]`` -> float32 ``[H, W]``."""
        return self.step_tensor(frame).cpu().numpy()


__all__ = ["STREAM_ROWS", "StreamingDepth", "context_frames", "stream_list"]
