"""Scale/shift alignment and blending of consecutive windows (step 6 of the offline algorithm).

:class:`WindowAligner` takes each window's 32 depth maps (already at the decoded frame size) and returns
the maps that are final: all but the last :data:`INTERP`, which the next window blends into. Call
:meth:`WindowAligner.finish` after the last window for the rest.
"""

from __future__ import annotations

import logging
import math
from typing import Optional

import torch

from vda.depth.windows import ALIGN_SLOTS, INTERP, OVERLAP, REFERENCE_SLOTS, WINDOW

logger = logging.getLogger(__name__)

FLAT_RELATIVE_STD = 1e-6  # a prediction whose spread is below this fraction of its mean is flat


def _moments(prediction: torch.Tensor, target: torch.Tensor) -> tuple[float, float, float, float]:
    """Centred sums ``var = sum(dp^2)``, ``cov = sum(dp * dq)`` and the two means, as Python floats."""
    p = prediction.float()
    q = target.float()
    p_mean, q_mean = p.mean(), q.mean()
    dp = p - p_mean
    var = (dp * dp).sum()
    cov = (dp * (q - q_mean)).sum()
    # One device-to-host copy for the four scalars (one sync per window, not four).
    var_f, cov_f, p_mean_f, q_mean_f = torch.stack([var, cov, p_mean, q_mean]).tolist()
    return var_f, cov_f, p_mean_f, q_mean_f


def scale_shift(prediction: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Least-squares ``s, t`` minimising ``sum((prediction * s + t - target)^2)`` over all elements.

    Solved with centred sums (the same minimiser as the normal equations, without their cancellation in
    float32). A constant ``prediction`` gives ``(1.0, 0.0)``.
    """
    var_f, cov_f, p_mean_f, q_mean_f = _moments(prediction, target)
    if var_f == 0.0:
        return 1.0, 0.0
    scale = cov_f / var_f
    return scale, q_mean_f - scale * p_mean_f


def fit_scale_shift(prediction: torch.Tensor, target: torch.Tensor) -> Optional[tuple[float, float]]:
    """:func:`scale_shift`, or None when the fit cannot be trusted: a flat ``prediction`` (its spread is
    below :data:`FLAT_RELATIVE_STD` of its mean, i.e. rounding noise), a scale that is not positive (a
    negative one would swap near and far) or anything not finite."""
    var_f, cov_f, p_mean_f, q_mean_f = _moments(prediction, target)
    std = math.sqrt(var_f / prediction.numel()) if math.isfinite(var_f) and var_f >= 0 else math.nan
    if not std > FLAT_RELATIVE_STD * abs(p_mean_f):  # also catches NaN
        return None
    scale = cov_f / var_f
    shift = q_mean_f - scale * p_mean_f
    if not (math.isfinite(scale) and math.isfinite(shift)) or scale <= 0:
        return None
    return scale, shift


def blend_weights(device: torch.device) -> torch.Tensor:
    """Weights of the new window's maps over the blended overlap: 0, 1/7, ..., 1, shaped ``[INTERP, 1, 1]``."""
    return torch.tensor([i / (INTERP - 1) for i in range(INTERP)], dtype=torch.float32, device=device).view(-1, 1, 1)


class WindowAligner:
    """Stateful aligner over windows of depth maps ``[WINDOW, H, W]``.

    ``metric=True`` uses scale 1 and shift 0 (metric depth is already in metres), but still blends.
    """

    def __init__(self, metric: bool = False) -> None:
        self.metric = metric
        self.references: Optional[torch.Tensor] = None  # [2, H, W]
        self.tail: Optional[torch.Tensor] = None  # last INTERP aligned maps, not final yet
        self.scales: list[tuple[float, float]] = []
        self.degenerate_windows = 0  # windows aligned with scale 1, shift 0 because the fit was degenerate

    def push(self, depth: torch.Tensor) -> torch.Tensor:
        """Add one window's maps; returns the maps that are now final, in order."""
        if depth.shape[0] != WINDOW:
            raise ValueError(f"expected {WINDOW} depth maps per window, got {depth.shape[0]}")
        if self.references is None:
            self.references = depth[list(REFERENCE_SLOTS)].clone()
            self.tail = depth[WINDOW - INTERP :]
            self.scales.append((1.0, 0.0))
            return depth[: WINDOW - INTERP]
        if self.metric:
            scale, shift = 1.0, 0.0
        else:
            fit = fit_scale_shift(depth[:ALIGN_SLOTS], self.references)
            if fit is None:
                if self.degenerate_windows == 0:
                    logger.warning(
                        "window %d: degenerate depth alignment (flat or inverted depth, or a singular fit); "
                        "using scale 1, shift 0 for such windows",
                        len(self.scales),
                    )
                self.degenerate_windows += 1
                fit = (1.0, 0.0)
            scale, shift = fit
        self.scales.append((scale, shift))
        aligned = (depth * scale + shift).clamp_(min=0)
        w = blend_weights(depth.device)
        blended = self.tail * (1 - w) + aligned[ALIGN_SLOTS:OVERLAP] * w
        self.tail = aligned[WINDOW - INTERP :]
        self.references = torch.stack([self.references[0], aligned[REFERENCE_SLOTS[1]]])
        return torch.cat([blended, aligned[OVERLAP : WINDOW - INTERP]])

    def finish(self) -> torch.Tensor:
        """The last :data:`INTERP` maps (final once no window follows)."""
        if self.tail is None:
            raise RuntimeError("finish() called before any window was pushed")
        tail, self.tail = self.tail, None
        return tail


__all__ = ["WindowAligner", "blend_weights", "fit_scale_shift", "scale_shift"]
