"""Scale/shift alignment and blending of consecutive windows (step 6 of the offline algorithm).

:class:`WindowAligner` takes each window's 32 depth maps (already at the decoded frame size) and returns
the maps that are final: all but the last :data:`INTERP`, which the next window blends into. Call
:meth:`WindowAligner.finish` after the last window for the rest.
"""

from __future__ import annotations

from typing import Optional

import torch

from vda.pipeline.windows import ALIGN_SLOTS, INTERP, OVERLAP, REFERENCE_SLOTS, WINDOW


def scale_shift(prediction: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Least-squares ``s, t`` minimising ``sum((prediction * s + t - target)^2)`` over all elements.

    Solved with centred sums (the same minimiser as the normal equations, without their cancellation in
    float32). A constant ``prediction`` gives ``(1.0, 0.0)``.
    """
    p = prediction.float()
    q = target.float()
    p_mean, q_mean = p.mean(), q.mean()
    dp = p - p_mean
    var = (dp * dp).sum()
    cov = (dp * (q - q_mean)).sum()
    # One device-to-host copy for the four scalars (one sync per window, not four).
    var_f, cov_f, p_mean_f, q_mean_f = torch.stack([var, cov, p_mean, q_mean]).tolist()
    if var_f == 0.0:
        return 1.0, 0.0
    scale = cov_f / var_f
    return scale, q_mean_f - scale * p_mean_f


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
            scale, shift = scale_shift(depth[:ALIGN_SLOTS], self.references)
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


__all__ = ["WindowAligner", "blend_weights", "scale_shift"]
