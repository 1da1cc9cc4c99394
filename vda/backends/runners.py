"""Runners: a built torch network behind one runtime, with the interface the offline engine uses.

Every runner offers ``encode(frames [N, 3, H, W]) -> 4 token maps``, ``decode(features, batch, frames,
patch_hw, slots=None) -> depth [B, T, H, W] float32`` (with ``slots``: the first ``slots`` maps of each window),
``forward``/``__call__`` on ``[B, T, 3, H, W]`` and the attributes
``device``, ``metric``, ``precision``, ``encoder_name``, ``attention_name``, so that
:class:`vda.depth.WindowedDepth` takes one unchanged. Graph runners build their graphs on the first call
at a new network input size; ``build_s`` accumulates the seconds spent building (export, conversion,
compilation, session creation; for ``compile`` the first call of each graph, one run included).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from vda.backends.export import GraphSource, weights_digest
from vda.errors import BackendUnavailableError, CheckpointError, InputShapeError, NonFiniteOutputError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.temporal import MAX_FRAMES as WINDOW
from vda.model.video_depth_anything import Features, VideoDepthAnything, check_frames, check_window_length
from vda.runtime.precision import Precision

# Frames per call of the encoder graph. A graph runtime keeps its activation buffers sized for the largest batch
# it has run (OpenVINO, 252-pixel input: about 500 MiB at 32 frames, 180 at 8, 130 at 4); the encoder's frames are
# independent and its CPU time per frame is the same at 4 as at 32, so windows are encoded in chunks.
ENCODER_CHUNK = 4


@dataclass(frozen=True)
class NetworkFacts:
    """What a runner reports of its torch network, fixed when the runner is made (a graph runner keeps them when it
    lets the network itself go)."""

    device: torch.device
    metric: bool
    precision: Precision
    encoder_name: str
    token_dim: int  # D of the encoder's token maps

    @classmethod
    def of(cls, model: VideoDepthAnything) -> "NetworkFacts":
        return cls(model.device, model.metric, model.precision, model.encoder_name, model.pretrained.cls_token.shape[-1])


class Runner:
    """Base runner: the torch network run eagerly (backend ``torch``)."""

    backend = "torch"
    # Allocates device memory outside torch's allocator (its figures are then invisible to torch's counters).
    foreign_memory = False

    def __init__(self, model: VideoDepthAnything) -> None:
        self.model = model
        self.facts = NetworkFacts.of(model)
        self.build_s = 0.0

    @property
    def device(self) -> torch.device:
        return self.facts.device

    @property
    def metric(self) -> bool:
        return self.facts.metric

    @property
    def precision(self) -> Precision:
        return self.facts.precision

    @property
    def encoder_name(self) -> str:
        return self.facts.encoder_name

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
    """Runs the encoder and head graphs built per network input size; subclasses say how to build and call.

    A runner whose runtime holds its own copy of the weights (``releases_network``) lets the torch network go
    once a size's graphs are built, when it was given a way to load the network again (:meth:`reload_with`):
    a later size whose graphs are in the cache needs only the weights' digest, one that must be exported loads
    the network again (and lets it go after).
    """

    releases_network = False

    def __init__(self, model: VideoDepthAnything) -> None:
        super().__init__(model)
        self.graphs: dict[tuple[int, int], tuple] = {}  # patch grid -> (encoder, head)
        self._weights: Optional[str] = None  # digest of the network's weights, once hashed
        self._load: Optional[Callable[[], VideoDepthAnything]] = None

    def reload_with(self, load: Callable[[], VideoDepthAnything]) -> None:
        """``load()`` builds the same network again (same checkpoint): the runner may then let it go."""
        self._load = load

    def source(self) -> GraphSource:
        """The network as the graph cache sees it; its weights are hashed once, while the network is here."""
        if self._weights is None:
            self._weights = weights_digest(self.network())
        return GraphSource(self.encoder_name, self.metric, self._weights, self.network)

    def network(self) -> VideoDepthAnything:
        """The torch network, loaded again if it was let go; refused when the weights loaded differ from those
        the runner's graphs were built from (the checkpoint changed on disk)."""
        if self.model is None:
            model = self._load()
            if weights_digest(model) != self._weights:
                raise CheckpointError(
                    f"the {self.encoder_name} checkpoint changed while backend={self.backend} was running; "
                    "run again to use the new weights"
                )
            self.model = model
        return self.model

    def _graphs_for(self, patch_hw: tuple[int, int]) -> tuple:
        if patch_hw not in self.graphs:
            start = time.perf_counter()
            self.graphs[patch_hw] = self.build(patch_hw)
            self.build_s += time.perf_counter() - start
            if self.releases_network and self._load is not None:
                self.model = None  # the runtime holds the weights; source() keeps their digest
        return self.graphs[patch_hw]

    @abc.abstractmethod
    def build(self, patch_hw: tuple[int, int]) -> tuple:
        """The (encoder, head) graphs for one patch grid."""

    @abc.abstractmethod
    def run_encoder(self, graph, frames: torch.Tensor) -> Features:
        """Frames [N, 3, H, W] -> four token maps [N, ph*pw, D] on the runner's device; they may be the graph's
        own buffers, valid until its next call (:meth:`encode` copies them out)."""

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
        count, out = frames.shape[0], None
        for first in range(0, count, ENCODER_CHUNK):
            rows = self.run_encoder(encoder, frames[first : first + ENCODER_CHUNK])
            if out is None:
                out = tuple(r.new_empty((count, *r.shape[1:])) for r in rows)
            for target, row in zip(out, rows, strict=True):
                target[first : first + row.shape[0]].copy_(row)
        return out

    def decode(self, features: Features, batch: int, frames: int, patch_hw: tuple[int, int], **options) -> torch.Tensor:
        """Token maps [B*T, ph*pw, D] (b-major) -> depth [B, T, ph*14, pw*14] float32; T must be the window.

        ``stream=`` (one frame at a time) cannot run on graphs; ``precision=`` only at the runner's precision;
        ``slots=`` keeps the first maps of each window (the graph computes the whole window).
        """
        stream, precision, slots = options.pop("stream", None), options.pop("precision", None), options.pop("slots", None)
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
                             for b in range(batch)])[:, :slots]  # [B, T (or slots), H, W]
        if not torch.isfinite(depth).all():
            raise NonFiniteOutputError(
                f"backend={self.backend} produced NaN/inf depth in {self.precision.value}; run with precision=fp32"
            )
        return depth


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A tensor as a contiguous float32 host array (the graphs' input)."""
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


__all__ = ["ENCODER_CHUNK", "GraphRunner", "NetworkFacts", "Runner", "to_numpy"]
