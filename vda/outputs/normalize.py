"""How the preview maps depth to colours: ``output.vis_normalize``.

* ``global`` (the default for files): one range for the whole video, its min and max, known after the last
  frame; the preview is written in the second pass.
* ``running``: a range that follows the video as it plays, for a live stream that cannot wait for its end:
  an exponential moving average over ``output.vis_span`` frames of each frame's :data:`LOW_PERCENTILE` and
  :data:`HIGH_PERCENTILE`. The preview is then written as the depth comes, and a single odd frame neither
  flickers the colours nor stretches them for the rest of the video.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from vda.errors import ConfigError

VIS_NORMALIZE = ("global", "running")
LOW_PERCENTILE = 2.0
HIGH_PERCENTILE = 98.0
SAMPLE_SIDE = 256  # percentiles are taken on a strided sample of at most ~this many pixels per side


def check_vis_normalize(value: str, span: int) -> None:
    if value not in VIS_NORMALIZE:
        raise ConfigError(f"output.vis_normalize={value!r} is not one of {', '.join(VIS_NORMALIZE)}")
    if span < 1:
        raise ConfigError(f"output.vis_span={span} averages over no frame; use 1 (no smoothing) or more")


class RunningRange:
    """Exponential moving average (weight ``2 / (span + 1)`` for the newest frame) of per-frame low and high
    percentiles; the first frame sets the range."""

    def __init__(self, span: int) -> None:
        self.alpha = 2.0 / (span + 1.0)
        self.low: Optional[float] = None
        self.high: Optional[float] = None

    def update(self, depth: np.ndarray) -> tuple[float, float]:
        """Add one map ``[H, W]``; returns the range to colour it with."""
        step = max(1, max(depth.shape) // SAMPLE_SIDE)
        low, high = np.percentile(depth[::step, ::step], (LOW_PERCENTILE, HIGH_PERCENTILE))
        if self.low is None:
            self.low, self.high = float(low), float(high)
        else:
            self.low += self.alpha * (float(low) - self.low)
            self.high += self.alpha * (float(high) - self.high)
        return self.low, self.high


__all__ = ["HIGH_PERCENTILE", "LOW_PERCENTILE", "RunningRange", "VIS_NORMALIZE", "check_vis_normalize"]
