"""Frame preprocessing on the inference device (steps 1-2 of the offline algorithm).

RGB ``uint8`` -> float32 in [0, 1] -> "lower bound" resize to multiples of 14 (bicubic, half-pixel
centres) -> ImageNet normalisation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vda.model.dinov2 import PATCH_SIZE as PATCH
from vda.runtime.device import to_device

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
MAX_ASPECT = 1.78


def effective_input_size(height: int, width: int, input_size: int) -> int:
    """``input_size``, reduced for frames wider (or taller) than 16:9 to bound memory."""
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT:
        return round(int(input_size * 1.777 / ratio) / PATCH) * PATCH
    return input_size


def _multiple_of_patch(value: float, minimum: int) -> int:
    size = int(round(value / PATCH) * PATCH)  # round() rounds half to even, as numpy does
    if size < minimum:
        size = int(np.ceil(value / PATCH) * PATCH)
    return size


def network_size(height: int, width: int, input_size: int) -> tuple[int, int]:
    """``(h, w)`` fed to the network: aspect kept, both sides >= the size, multiples of 14."""
    size = effective_input_size(height, width, input_size)
    scale = max(size / height, size / width)
    return _multiple_of_patch(scale * height, size), _multiple_of_patch(scale * width, size)


class Preprocessor:
    """Turns decoded RGB frames into normalised network input ``[N, 3, h, w]`` on ``device``."""

    def __init__(self, frame_hw: tuple[int, int], input_size: int, device: torch.device) -> None:
        self.size = network_size(frame_hw[0], frame_hw[1], input_size)
        self.device = device
        self.mean = torch.tensor(MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    @property
    def patch_hw(self) -> tuple[int, int]:
        return self.size[0] // PATCH, self.size[1] // PATCH

    def __call__(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        batch = to_device(torch.from_numpy(np.stack(frames)), self.device)  # [N, H, W, 3] uint8
        # contiguous NCHW: the permuted view is channels_last, which every op after it would keep
        x = batch.permute(0, 3, 1, 2).contiguous().float().div_(255.0)
        x = F.interpolate(x, size=self.size, mode="bicubic", align_corners=False)
        return (x - self.mean) / self.std


__all__ = ["Preprocessor", "effective_input_size", "network_size"]
