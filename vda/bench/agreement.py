"""How far one output is from a reference output: raw tensor errors and depth-map agreement.

All maths in float64. ``rel_l2`` is ``||pred - ref|| / ||ref||``. AbsRel and δ1 are the usual depth metrics
computed *between the two maps* (the reference plays ground truth) over pixels where the reference is
positive; δ1 is the fraction of those pixels with ``max(pred / ref, ref / pred) < 1.25``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

DELTA1_THRESHOLD = 1.25

ArrayLike = torch.Tensor | np.ndarray


def _pair(pred: ArrayLike, ref: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    # copy to the host first, then cast: MPS has no float64, so a cast on the device fails
    p = torch.as_tensor(pred).detach().cpu().to(torch.float64)
    r = torch.as_tensor(ref).detach().cpu().to(torch.float64)
    if p.shape != r.shape:
        raise ValueError(f"cannot compare shapes {tuple(p.shape)} and {tuple(r.shape)}")
    return p, r


def max_abs_err(pred: ArrayLike, ref: ArrayLike) -> float:
    p, r = _pair(pred, ref)
    return float((p - r).abs().max())


def rel_l2(pred: ArrayLike, ref: ArrayLike) -> float:
    p, r = _pair(pred, ref)
    diff = float(torch.linalg.vector_norm(p - r))
    norm = float(torch.linalg.vector_norm(r))
    if norm == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / norm


def abs_rel(pred: ArrayLike, ref: ArrayLike) -> float:
    """Mean ``|pred - ref| / ref`` over pixels with ``ref > 0``; NaN when there are none."""
    p, r = _pair(pred, ref)
    valid = r > 0
    if not valid.any():
        return math.nan
    return float(((p[valid] - r[valid]).abs() / r[valid]).mean())


def delta1(pred: ArrayLike, ref: ArrayLike, threshold: float = DELTA1_THRESHOLD) -> float:
    """Fraction of pixels with ``ref > 0`` whose ratio ``max(pred/ref, ref/pred)`` is below ``threshold``."""
    p, r = _pair(pred, ref)
    valid = r > 0
    if not valid.any():
        return math.nan
    p, r = p[valid], r[valid]
    ratio = torch.maximum(p / r, r / p)  # pred == 0 gives inf: a miss
    return float((ratio < threshold).double().mean())


@dataclass(frozen=True)
class Agreement:
    max_abs_err: float
    rel_l2: float
    absrel: float
    delta1: float

    def metrics(self) -> dict[str, float]:
        """Under the MLflow metric names."""
        return {
            "equiv_max_abs_err": self.max_abs_err,
            "equiv_rel_l2": self.rel_l2,
            "equiv_absrel": self.absrel,
            "equiv_delta1": self.delta1,
        }


def compare(pred: ArrayLike, ref: ArrayLike) -> Agreement:
    return Agreement(max_abs_err(pred, ref), rel_l2(pred, ref), abs_rel(pred, ref), delta1(pred, ref))


__all__ = ["Agreement", "DELTA1_THRESHOLD", "abs_rel", "compare", "delta1", "max_abs_err", "rel_l2"]
