"""The network split into the two static graphs the backends compile or export: encoder and head.

The split is the one the pipeline's feature cache uses: the encoder maps a batch of frames to four token maps
(frames are independent, so the batch axis may vary); the head maps one window of ``WINDOW`` frames of
features to depth. Both are built for one network input size, so the positional table of the encoder's grid
is computed once here and held as a constant buffer (the bicubic-by-scale-factor interpolation it replaces
does not export).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import VideoDepthAnything
from vda.model.temporal import MAX_FRAMES as WINDOW

FEATURE_NAMES = ("feature1", "feature2", "feature3", "feature4")


class EncoderGraph(nn.Module):
    """Frames [N, 3, ph*14, pw*14] -> four token maps, each [N, ph*pw, D]; the table of the grid is a buffer."""

    def __init__(self, model: VideoDepthAnything, patch_hw: tuple[int, int]) -> None:
        super().__init__()
        self.vit = model.pretrained
        self.indices = model.intermediate_layers
        rows, cols = patch_hw
        with torch.no_grad():
            table = self.vit.interpolate_pos_encoding(1 + rows * cols, rows, cols, torch.float32)
        self.register_buffer("pos_table", table, persistent=False)  # [1, 1+ph*pw, D]

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.vit.get_intermediate_layers(frames, self.indices, self.pos_table)


class HeadGraph(nn.Module):
    """Features of one window, each [WINDOW, ph*pw, D] -> depth [WINDOW, ph*14, pw*14] float32 (ReLU'd).

    The same computation as :meth:`VideoDepthAnything.decode` for batch 1 without the autocast (the graph is
    float32; precision is the runtime's business) and without the finiteness check (done by the runner).
    """

    def __init__(self, model: VideoDepthAnything, patch_hw: tuple[int, int]) -> None:
        super().__init__()
        self.head = model.head
        self.patch_hw = patch_hw

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        size = (self.patch_hw[0] * PATCH_SIZE, self.patch_hw[1] * PATCH_SIZE)
        depth = self.head(features, WINDOW, self.patch_hw)  # [T, 1, h, w]
        depth = F.interpolate(depth.float(), size=size, mode="bilinear", align_corners=True)
        return F.relu(depth).squeeze(1)


def example_inputs(model: VideoDepthAnything, patch_hw: tuple[int, int], frames: int = 2):
    """Random inputs of the right shapes for tracing: (encoder frames, head features)."""
    rows, cols = patch_hw
    device = model.device
    x = torch.randn(frames, 3, rows * PATCH_SIZE, cols * PATCH_SIZE, device=device)
    dim = model.pretrained.cls_token.shape[-1]
    features = tuple(torch.randn(WINDOW, rows * cols, dim, device=device) for _ in FEATURE_NAMES)
    return x, features
