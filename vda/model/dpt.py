"""DPT head with temporal modules: four token maps -> one depth map per frame."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vda.attention import AttentionOp
from vda.model.dinov2 import PATCH_SIZE
from vda.model.temporal import StreamCache, TemporalModule
from vda.runtime.precision import fp32_region


class ResidualConvUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FeatureFusionBlock(nn.Module):
    """refinenet(a, b): a + rcu1(b) (b optional) -> rcu2 -> bilinear resize -> 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(channels, channels, 1)
        self.resConfUnit1 = ResidualConvUnit(channels)
        self.resConfUnit2 = ResidualConvUnit(channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None):
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    """The DPT decoder convolutions (``head.scratch.*`` in the checkpoints)."""

    def __init__(self, in_channels: list[int], features: int) -> None:
        super().__init__()
        for i, channels in enumerate(in_channels, start=1):
            self.add_module(f"layer{i}_rn", nn.Conv2d(channels, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            self.add_module(f"refinenet{i}", FeatureFusionBlock(features))
        self.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.output_conv2 = nn.Sequential(
            nn.Conv2d(features // 2, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, 1),
            nn.ReLU(),
        )


class DPTHeadTemporal(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        features: int,
        out_channels: list[int],
        attention: AttentionOp,
        micro_batch: int = 4,
    ) -> None:
        super().__init__()
        # frames decoded together in the full-resolution stages, which dominate memory; per-frame, so exact
        self.micro_batch = micro_batch
        self.projects = nn.ModuleList(nn.Conv2d(embed_dim, c, 1) for c in out_channels)
        self.resize_layers = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], 4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], 3, stride=2, padding=1),
            ]
        )
        self.scratch = Scratch(out_channels, features)
        self.motion_modules = nn.ModuleList(
            TemporalModule(c, attention) for c in (out_channels[2], out_channels[3], features, features)
        )

    def _temporal(self, index: int, x: torch.Tensor, frames: int, stream: Optional[StreamCache]) -> torch.Tensor:
        module = self.motion_modules[index]
        memories = None if stream is None else stream.module(index, module.attention_blocks)
        x = x.unflatten(0, (-1, frames)).transpose(1, 2)  # [B*T, C, h, w] -> [B, C, T, h, w]
        return module(x, memories).transpose(1, 2).flatten(0, 1)

    def forward(
        self,
        tokens: tuple[torch.Tensor, ...],
        frames: int,
        patch_hw: tuple[int, int],
        stream: Optional[StreamCache] = None,
        slots: Optional[int] = None,
    ) -> torch.Tensor:
        """Token maps, each [B*T, ph*pw, D] -> depth [B*T, 1, ph*14, pw*14] (before the final resize).

        With ``stream`` the input is one new frame (B = T = 1) of a stream and the temporal blocks attend over
        the frames held in ``stream`` (the caller brackets the call with ``stream.begin`` / ``stream.end``).
        With ``slots`` only the first ``slots`` frames of each window get depth, [B*slots, 1, ...]: the temporal
        modules still see every frame; the stages after them, per frame and most of the head's work, run for the
        kept frames only.
        """
        ph, pw = patch_hw
        kept = None
        if slots is not None and slots < frames:
            windows = tokens[0].shape[0] // frames
            kept = torch.cat([torch.arange(slots) + b * frames for b in range(windows)]).to(tokens[0].device)
        layers = []
        for i, x in enumerate(tokens):
            if kept is not None and i < 2:  # layers 1 and 2 feed only the per-frame stages
                x = x.index_select(0, kept)
            x = x.transpose(1, 2).reshape(x.shape[0], x.shape[-1], ph, pw)  # [B*T, D, ph, pw]
            layers.append(self.resize_layers[i](self.projects[i](x)))
        layer_1, layer_2, layer_3, layer_4 = layers
        layer_3 = self._temporal(0, layer_3, frames, stream)
        layer_4 = self._temporal(1, layer_4, frames, stream)

        s = self.scratch
        layer_1_rn, layer_2_rn = s.layer1_rn(layer_1), s.layer2_rn(layer_2)
        layer_3_rn, layer_4_rn = s.layer3_rn(layer_3), s.layer4_rn(layer_4)

        path_4 = s.refinenet4(layer_4_rn, size=layer_3_rn.shape[2:])
        path_4 = self._temporal(2, path_4, frames, stream)
        path_3 = s.refinenet3(path_4, layer_3_rn, size=layer_2_rn.shape[2:])
        path_3 = self._temporal(3, path_3, frames, stream)
        if kept is not None:
            path_3 = path_3.index_select(0, kept)  # [B*slots, C, h, w]

        out_size = (ph * PATCH_SIZE, pw * PATCH_SIZE)
        chunks = []
        for i in range(0, path_3.shape[0], self.micro_batch):
            frames_slice = slice(i, i + self.micro_batch)
            path_2 = s.refinenet2(path_3[frames_slice], layer_2_rn[frames_slice], size=layer_1_rn.shape[2:])
            path_1 = s.refinenet1(path_2, layer_1_rn[frames_slice])
            out = F.interpolate(s.output_conv1(path_1), size=out_size, mode="bilinear", align_corners=True)
            with fp32_region(out.device):
                chunks.append(s.output_conv2(out.float()))  # the last convolutions run in float32
        return torch.cat(chunks)
