"""Runners: a built torch network behind one runtime, with the interface the offline engine uses.

Every runner offers ``encode(frames [N, 3, H, W]) -> 4 token maps``, ``decode(features, batch, frames,
patch_hw) -> depth [B, T, H, W] float32``, ``forward``/``__call__`` on ``[B, T, 3, H, W]`` and the attributes
``device``, ``metric``, ``precision``, ``encoder_name``, ``attention_name``, so that
:class:`vda.depth.WindowedDepth` takes one unchanged. Graph runners build their graphs on the first call
at a new network input size; ``build_s`` accumulates the seconds spent building (export, conversion,
compilation, session creation; for ``compile`` the first call of each graph, one run included).
"""

from __future__ import annotations

import abc
import time
from typing import Optional

import numpy as np
import torch

from vda.errors import BackendUnavailableError, InputShapeError, NonFiniteOutputError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.temporal import MAX_FRAMES as WINDOW
from vda.model.video_depth_anything import Features, VideoDepthAnything, check_frames, check_window_length
from vda.runtime.precision import Precision



class Runner:
    """Base runner: the torch network run eagerly (backend ``torch``)."""

    backend = "torch"
    # Allocates device memory outside torch's allocator (its figures are then invisible to torch's counters).
    foreign_memory = False

    def __init__(self, model: VideoDepthAnything) -> None:
        self.model = model
        self.build_s = 0.0

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def metric(self) -> bool:
        return self.model.metric

    @property
    def precision(self) -> Precision:
        return self.model.precision

    @property
    def encoder_name(self) -> str:
        return self.model.encoder_name

    @property
    def attention_name(self) -> str:
        return self.model.attention_name

    @property
    def head(self):
        """The network's head (its micro-batch shrinks on out-of-memory); None where graphs run instead."""
        return self.model.head

    def encode(self, frames: torch.Tensor, precision: Optional[Precision] = None) -> Features:
        return self.model.encode(frames, precision)

    def decode(self, features: Features, batch: int, frames: int, patch_hw: tuple[int, int], **options) -> torch.Tensor:
        """As :meth:`VideoDepthAnything.decode` (``stream=``, ``precision=`` included)."""
        return self.model.decode(features, batch, frames, patch_hw, **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames [B, T, 3, H, W] -> depth [B, T, H, W] float32."""
        if x.ndim != 5:
            raise InputShapeError(f"expected frames [B, T, 3, H, W], got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        check_window_length(t)
        features = self.encode(x.flatten(0, 1))
        return self.decode(features, b, t, (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE))

    __call__ = forward

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.encoder_name}, {self.precision.value}, {self.device})"


class GraphRunner(Runner, abc.ABC):
    """Runs the encoder and head graphs built per network input size; subclasses say how to build and call."""

    def __init__(self, model: VideoDepthAnything) -> None:
        super().__init__(model)
        self.graphs: dict[tuple[int, int], tuple] = {}  # patch grid -> (encoder, head)

    def _graphs_for(self, patch_hw: tuple[int, int]) -> tuple:
        if patch_hw not in self.graphs:
            start = time.perf_counter()
            self.graphs[patch_hw] = self.build(patch_hw)
            self.build_s += time.perf_counter() - start
        return self.graphs[patch_hw]

    @abc.abstractmethod
    def build(self, patch_hw: tuple[int, int]) -> tuple:
        """The (encoder, head) graphs for one patch grid."""

    @abc.abstractmethod
    def run_encoder(self, graph, frames: torch.Tensor) -> Features:
        """Frames [N, 3, H, W] -> four token maps [N, ph*pw, D] on the runner's device."""

    @abc.abstractmethod
    def run_head(self, graph, features: Features) -> torch.Tensor:
        """Features of one window, each [T, ph*pw, D] -> depth [T, H, W] float32."""

    @property
    def head(self):
        return None

    def _check_precision(self, precision: Optional[Precision]) -> None:
        """The graphs run at the runner's precision only: the float32 retry of a NaN/inf window cannot run here."""
        if precision is not None and precision is not self.precision:
            raise NonFiniteOutputError(
                f"backend={self.backend} produced NaN/inf in {self.precision.value} and cannot recompute the window "
                f"in {precision.value}; run with precision=fp32"
            )

    def encode(self, frames: torch.Tensor, precision: Optional[Precision] = None) -> Features:
        """Frames [N, 3, H, W] -> four token maps [N, ph*pw, D] (float32)."""
        self._check_precision(precision)
        check_frames(frames)
        encoder, _ = self._graphs_for((frames.shape[-2] // PATCH_SIZE, frames.shape[-1] // PATCH_SIZE))
        return self.run_encoder(encoder, frames)

    def decode(self, features: Features, batch: int, frames: int, patch_hw: tuple[int, int], **options) -> torch.Tensor:
        """Token maps [B*T, ph*pw, D] (b-major) -> depth [B, T, ph*14, pw*14] float32; T must be the window.

        ``stream=`` (one frame at a time) cannot run on graphs; ``precision=`` only at the runner's precision.
        """
        stream, precision = options.pop("stream", None), options.pop("precision", None)
        if options:
            raise TypeError(f"decode() got unexpected options {sorted(options)}")
        if stream is not None:
            raise BackendUnavailableError(
                f"backend={self.backend} runs the head on whole windows; mode=stream needs backend=torch"
            )
        self._check_precision(precision)
        check_window_length(frames)
        if frames != WINDOW:
            raise InputShapeError(
                f"backend={self.backend} runs the head on whole windows of {WINDOW} frames, got T={frames}; "
                "pad the window or use backend=torch"
            )
        _, head = self._graphs_for(tuple(patch_hw))
        depth = torch.stack([self.run_head(head, tuple(f[b * frames : (b + 1) * frames] for f in features))
                             for b in range(batch)])  # [B, T, H, W]
        if not torch.isfinite(depth).all():
            raise NonFiniteOutputError(
                f"backend={self.backend} produced NaN/inf depth in {self.precision.value}; run with precision=fp32"
            )
        return depth


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A tensor as a contiguous float32 host array (the graphs' input)."""
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


__all__ = ["GraphRunner", "Runner", "to_numpy"]
