"""``scenario.no_model=true`` of the pipeline scenario: no network, to measure the I/O ceiling of a run.

A benchmark feature, not a test double: the pipeline scenario runs it in place of the network.

:class:`NoModel` has the interface :class:`~vda.depth.engine.WindowedDepth` and
:func:`~vda.depth.process.process_video` use (``encode``, ``decode``, ``device``, ``metric``,
``precision``, ``encoder_name``, ``attention_name``). Its "depth" is a cheap function of the input frames,
positive and varying, so alignment, blending and every writer see realistic values; with it, frames per
second measure decoding, preprocessing, alignment and writing only.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from vda.model.video_depth_anything import PATCH_SIZE, Features
from vda.runtime.precision import Precision


class NoModel(nn.Module):
    """The I/O-ceiling runner: no weights; ``encode`` keeps one channel-mean map per frame, ``decode`` turns it into depth."""

    encoder_name = "no_model"
    attention_name = "none"

    def __init__(self, device: torch.device | str = "cpu", metric: bool = False) -> None:
        super().__init__()
        self._device = torch.device(device)
        self.metric = metric
        self.precision = Precision.fp32

    @property
    def device(self) -> torch.device:
        return self._device

    def encode(self, frames: torch.Tensor) -> Features:
        """Frames [N, 3, H, W] -> (channel means [N, H, W],)."""
        return (frames.float().mean(dim=1),)

    def decode(
        self, features: Features, batch: int, frames: int, patch_hw: tuple[int, int], slots: Optional[int] = None
    ) -> torch.Tensor:
        """(channel means [B*T, H, W],) -> depth [B, T (or the first ``slots``), ph*14, pw*14], float32, > 0."""
        means = features[0]
        if means.shape[1:] != (patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE):
            raise ValueError(f"no_model features of shape {tuple(means.shape)} do not match patch grid {patch_hw}")
        return (means.abs() + 0.1).unflatten(0, (batch, frames))[:, :slots]


__all__ = ["NoModel"]
