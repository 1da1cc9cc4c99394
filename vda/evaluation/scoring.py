"""Depth scoring exactly as the published ``benchmark/eval/eval.py`` and ``metric.py`` compute it.

Per frame: the prediction (affine-invariant disparity) is resized to the cropped ground truth (bilinear,
OpenCV ``INTER_LINEAR`` semantics: half-pixel centres, no antialias) and clipped at >= 1e-3; valid pixels are
``1e-3 < gt < cap``. Per sequence: one least-squares scale and shift, in float64, over every valid pixel of the
sequence against ``1 / (gt + 1e-8)``; the aligned prediction is clipped at >= 1e-3, inverted to depth and
clipped to ``[1e-3, cap]``; AbsRel, RMSE and δ1 (< 1.25) are sums over valid pixels divided by their count,
frames with no valid pixel are dropped, the rest averaged.

The fit is streamed (:class:`AffineFit` merges per-frame centred sums), so a sequence never needs to be
stacked in memory; it equals ``np.linalg.lstsq`` on the stacked pixels to float64 rounding, including its
minimum-norm answer when the prediction is constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPS = 1e-3  # clip of predictions, aligned disparities and depths; lower bound of valid ground truth
GT_EPS = 1e-8  # added to the ground truth before inverting it
DELTA1 = 1.25


def _linear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and float32 weight of the second tap for each output index (half-pixel centres, the
    coordinate in float64, edges clamped with weight 0 as OpenCV does)."""
    coord = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    first = np.floor(coord).astype(np.int64)
    weight = coord - first
    low, high = first < 0, first >= n_in - 1
    first[low], weight[low] = 0, 0.0
    first[high], weight[high] = n_in - 1, 0.0
    return first, np.minimum(first + 1, n_in - 1), weight.astype(np.float32)


def resize_linear(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``array`` (float32 ``[h, w]``) resized to ``size`` as ``cv2.resize(..., INTER_LINEAR)`` does.

    Rows then columns in float32 with float32 weights from float64 coordinates. ``torch.nn.functional.interpolate``
    (bilinear, ``align_corners=False``) has the same semantics but computes the source coordinates in float32,
    which moves values by up to ~4e-4 (relative) on large frames: too far to reproduce the published scores.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.shape == tuple(size):
        return array
    height, width = size
    x0, x1, wx = _linear_taps(width, array.shape[1])
    y0, y1, wy = _linear_taps(height, array.shape[0])
    one = np.float32(1.0)
    rows = array[:, x0] * (one - wx) + array[:, x1] * wx
    return rows[y0] * (one - wy)[:, None] + rows[y1] * wy[:, None]


def valid_mask(gt: np.ndarray, max_depth: float) -> np.ndarray:
    return (gt > EPS) & (gt < max_depth)


@dataclass
class AffineFit:
    """Streaming least squares ``target ≈ scale * x + shift`` over pixels added frame by frame, in float64.

    Holds the count, the means and the centred sums of squares and products, merged per frame (Chan et
    al.'s pairwise update), which keeps full float64 accuracy whatever the offset of the values.
    """

    n: int = 0
    mean_x: float = 0.0
    mean_y: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        count = x.size
        if count == 0:
            return
        x = x.astype(np.float64, copy=False)
        y = y.astype(np.float64, copy=False)
        mx, my = float(x.mean()), float(y.mean())
        dx = x - mx
        sxx, sxy = float(np.dot(dx, dx)), float(np.dot(dx, y - my))
        total = self.n + count
        delta_x, delta_y = mx - self.mean_x, my - self.mean_y
        weight = self.n * count / total
        self.sxx += sxx + delta_x * delta_x * weight
        self.sxy += sxy + delta_x * delta_y * weight
        self.mean_x += delta_x * count / total
        self.mean_y += delta_y * count / total
        self.n = total

    def solve(self) -> tuple[float, float]:
        """``(scale, shift)``; what ``np.linalg.lstsq`` answers for no pixel (0, 0) and a constant x (minimum norm)."""
        if self.n == 0:
            return 0.0, 0.0
        if self.sxx == 0.0:
            c = self.mean_x
            return c * self.mean_y / (c * c + 1.0), self.mean_y / (c * c + 1.0)
        scale = self.sxy / self.sxx
        return scale, self.mean_y - scale * self.mean_x


def aligned_depth(prediction: np.ndarray, scale: float, shift: float, max_depth: float) -> np.ndarray:
    """Depth (float64) from a clipped prediction and the sequence's scale and shift."""
    disparity = np.clip(scale * prediction.astype(np.float64) + shift, EPS, None)
    return np.clip(1.0 / disparity, EPS, max_depth)


@dataclass(frozen=True)
class FrameMetrics:
    abs_rel: float
    rmse: float
    delta1: float


def frame_metrics(depth: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> FrameMetrics | None:
    """AbsRel, RMSE and δ1 over the valid pixels; None when the frame has no valid pixel (it is dropped)."""
    n = int(valid.sum())
    if n == 0:
        return None
    d, g = depth[valid], gt[valid].astype(np.float64)
    diff = d - g
    ratio = np.maximum(d / g, g / d)
    return FrameMetrics(
        float(np.sum(np.abs(diff) / g) / n),
        math.sqrt(float(np.sum(diff * diff)) / n),
        float(np.count_nonzero(ratio < DELTA1)) / n,
    )


__all__ = ["AffineFit", "FrameMetrics", "aligned_depth", "frame_metrics", "resize_linear", "valid_mask"]
