"""Temporal alignment error (TAE) as the published ``benchmark/eval/eval_tae.py`` computes it.

For each consecutive pair of aligned depth maps, in both directions, frame 1's depth is back-projected with
K, moved by ``inv(T2) @ T1`` (camera-to-world poses), projected and rounded to the nearest pixel (half to
even, as ``torch.round``), and written into an empty map without a z-buffer. AbsRel between that map and
frame 2's *predicted* depth over the pixels where both are > 0 is the pair's error (0 when no pixel
qualifies). The scene's TAE is the sum over the 2(N-1) errors divided by 2(N-1), times 100.

Collisions: where several points land on one pixel, upstream writes them with one unordered scatter, so which
one stays is unspecified (it can differ between runs on CUDA). vda keeps the **last point in raster order of
the source pixels** (row by row, left to right), which is what a sequential scatter does.
"""

from __future__ import annotations

import numpy as np


def _relative_pose(pose1: np.ndarray, pose2: np.ndarray) -> np.ndarray:
    return np.linalg.inv(pose2) @ pose1


def project_depth(depth: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``depth`` (float64 ``[H, W]``) seen from the camera moved by ``(R, t)``: 0 where no point lands."""
    height, width = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    yy, xx = np.meshgrid(np.arange(height, dtype=depth.dtype), np.arange(width, dtype=depth.dtype), indexing="ij")
    points = np.stack((((xx - cx) * depth / fx).ravel(), ((yy - cy) * depth / fy).ravel(), depth.ravel()), axis=1)
    moved = points @ R.T + t
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(moved[:, 0] * fx / moved[:, 2] + cx)
        v = np.round(moved[:, 1] * fy / moved[:, 2] + cy)
    inside = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    target = v[inside].astype(np.int64) * width + u[inside].astype(np.int64)
    z = moved[inside, 2]
    # the last point (raster order) of each target pixel wins
    _, last_reversed = np.unique(target[::-1], return_index=True)
    keep = target.size - 1 - last_reversed
    projected = np.zeros(height * width, dtype=depth.dtype)
    projected[target[keep]] = z[keep]
    return projected.reshape(height, width)


def pair_error(depth1: np.ndarray, depth2: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray) -> float:
    """AbsRel of ``depth1`` projected into frame 2 against ``depth2`` where both are > 0 (0 when none)."""
    projected = project_depth(depth1, R, t, K)
    both = (projected > 0) & (depth2 > 0)
    if not both.any():
        return 0.0
    reference = depth2[both]
    return float(np.mean(np.abs(reference - projected[both]) / reference))


def pair_errors(
    depth1: np.ndarray, depth2: np.ndarray, pose1: np.ndarray, pose2: np.ndarray, K: np.ndarray
) -> tuple[float, float]:
    """Both directions of a consecutive pair (K of frame 1, as upstream)."""
    forward = _relative_pose(pose1, pose2)
    backward = np.linalg.inv(forward)
    return (
        pair_error(depth1, depth2, forward[:3, :3], forward[:3, 3], K),
        pair_error(depth2, depth1, backward[:3, :3], backward[:3, 3], K),
    )


__all__ = ["pair_error", "pair_errors", "project_depth"]
