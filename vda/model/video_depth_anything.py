"""Video Depth Anything: DINOv2 encoder + temporal DPT head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from vda.attention import AttentionConfig, AttentionOp, check_attention
from vda.attention.implementations import Choice
from vda.errors import InputShapeError, NonFiniteOutputError
from vda.model.dinov2 import PATCH_SIZE, DinoVisionTransformer
from vda.model.dpt import DPTHeadTemporal
from vda.model.temporal import MAX_FRAMES, StreamCache
from vda.registry import Registry
from vda.runtime.precision import Precision, autocast

Features = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class EncoderSpec:
    embed_dim: int
    depth: int
    num_heads: int
    layers: tuple[int, ...]
    features: int
    out_channels: tuple[int, int, int, int]


ENCODERS: Registry[EncoderSpec] = Registry("encoder")
DEFAULT_ENCODER = "vits"  # the smallest, with the permissive licence
ENCODERS.register("vits", EncoderSpec(384, 12, 6, (2, 5, 8, 11), 64, (48, 96, 192, 384)), help="ViT-S, 28M parameters")
ENCODERS.register("vitb", EncoderSpec(768, 12, 12, (2, 5, 8, 11), 128, (96, 192, 384, 768)), help="ViT-B, 113M")
ENCODERS.register("vitl", EncoderSpec(1024, 24, 16, (4, 11, 17, 23), 256, (256, 512, 1024, 1024)), help="ViT-L, 382M")


class VideoDepthAnything(nn.Module):
    """Maps normalised frames [B, T, 3, H, W] (H, W multiples of 14, T <= 32) to depth [B, T, H, W].

    ``precision`` selects autocast inside :meth:`encode` and :meth:`decode`; the output is always float32.
    """

    def __init__(
        self,
        encoder: str = DEFAULT_ENCODER,
        metric: bool = False,
        attention: Choice = AttentionConfig.name,
        precision: Precision | str = Precision.fp32,
    ) -> None:
        super().__init__()
        spec = ENCODERS.get(encoder)
        self.encoder_name = encoder
        self.metric = metric
        self.precision = Precision(precision)
        self.intermediate_layers = spec.layers
        self.attention = AttentionOp(attention)  # shared by every attention layer; no weights
        self.pretrained = DinoVisionTransformer(spec.embed_dim, spec.depth, spec.num_heads, self.attention)
        self.head = DPTHeadTemporal(spec.embed_dim, spec.features, list(spec.out_channels), self.attention)

    @property
    def device(self) -> torch.device:
        return self.pretrained.pos_embed.device

    @property
    def attention_name(self) -> str:
        return self.attention.name

    def set_attention(self, choice: Choice) -> None:
        """Switch the attention implementation (a name, or its options record) in place (weights untouched)."""
        self.attention.set(check_attention(choice, self.device, self.precision.value))

    def encode(self, frames: torch.Tensor, precision: Precision | None = None) -> Features:
        """Frames [N, 3, H, W] -> four token maps [N, ph*pw, D]; each frame is encoded independently.

        ``precision`` overrides the model's for this call (the fp32 retry of a non-finite window).
        """
        check_frames(frames)
        with autocast(frames.device, precision or self.precision):
            return self.pretrained.get_intermediate_layers(frames, self.intermediate_layers)

    def decode(
        self,
        features: Features,
        batch: int,
        frames: int,
        patch_hw: tuple[int, int],
        *,
        stream: Optional[StreamCache] = None,
        precision: Precision | None = None,
        slots: Optional[int] = None,
    ) -> torch.Tensor:
        """Token maps [B*T, ph*pw, D] (b-major) -> depth [B, T, ph*14, pw*14], float32.

        With ``stream`` the features are the next frame of a stream (B = T = 1): the temporal blocks attend
        over the frames ``stream`` holds (the streaming rule) and ``stream`` moves on to the next frame.
        ``precision`` overrides the model's for this call. ``slots`` keeps the depth of the first ``slots``
        frames of each window only, [B, slots, ...] (what the offline algorithm uses of its last window), the
        same maps for a fraction of the work. Raises :class:`NonFiniteOutputError` on NaN/inf.
        """
        check_window_length(frames)
        if stream is not None and batch * frames != 1:
            raise InputShapeError(f"a streaming step decodes one frame, got B={batch}, T={frames}")
        height, width = patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE
        precision = precision or self.precision
        with autocast(features[0].device, precision):
            if stream is not None:
                stream.begin(features[0].device)
            depth = self.head(features, frames, patch_hw, stream, slots)  # [B*T, 1, H, W]
        depth = F.relu(F.interpolate(depth.float(), size=(height, width), mode="bilinear", align_corners=True))
        depth = depth.squeeze(1).unflatten(0, (batch, -1))  # [B, T (or slots), H, W]
        if not torch.isfinite(depth).all():
            if precision in (Precision.fp16, Precision.bf16):
                hint = "(half-precision overflow); run with precision=fp32"
            else:
                hint = "even in float32; the checkpoint or the input frames are broken (check model.checkpoint=)"
            raise NonFiniteOutputError(  # a stream is not advanced: the same frame can be decoded again
                f"the network produced NaN/inf depth in {precision.value} on {depth.device.type} {hint}"
            )
        if stream is not None:
            stream.end()
        return depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise InputShapeError(f"expected frames [B, T, 3, H, W], got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        check_window_length(t)  # before the encoder does any work
        features = self.encode(x.flatten(0, 1))
        return self.decode(features, b, t, (x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE))


def check_window_length(frames: int) -> None:
    if frames > MAX_FRAMES:
        raise InputShapeError(f"a window holds at most {MAX_FRAMES} frames, got T={frames}; split the video")


def check_frames(frames: torch.Tensor) -> None:
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise InputShapeError(f"expected frames [N, 3, H, W], got shape {tuple(frames.shape)}")
    if not frames.is_floating_point():
        raise InputShapeError(f"expected normalised float frames, got dtype {frames.dtype}")
    h, w = frames.shape[-2:]
    if h % PATCH_SIZE or w % PATCH_SIZE or h == 0 or w == 0:
        raise InputShapeError(
            f"frame size {h}x{w} is not a multiple of {PATCH_SIZE}; resize to e.g. "
            f"{max(1, round(h / PATCH_SIZE)) * PATCH_SIZE}x{max(1, round(w / PATCH_SIZE)) * PATCH_SIZE}"
        )
