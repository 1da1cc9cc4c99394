"""Temporal module of the DPT head: attention over the time axis at every spatial position."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vda.attention import AttentionOp

MAX_FRAMES = 32  # length of the sinusoidal table stored in the checkpoints


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """pe[t, 2k] = sin(t / 10000^(2k/dim)), pe[t, 2k+1] = cos(...): [1, length, dim]."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(1, length, dim)
    table[0, :, 0::2] = torch.sin(position * div_term)
    table[0, :, 1::2] = torch.cos(position * div_term)
    return table


class PositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int = MAX_FRAMES) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalAttention(nn.Module):
    """Self-attention over T for each of the h*w positions; input and output [B*T, h*w, C]."""

    def __init__(self, dim: int, num_heads: int, attention: AttentionOp) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.pos_encoder = PositionalEncoding(dim)
        self.attend = attention

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, hw, c = x.shape
        x = x.unflatten(0, (bt // frames, frames)).transpose(1, 2).flatten(0, 1)  # [B*h*w, T, C]
        x = self.pos_encoder(x)
        heads = (self._split_heads(proj(x)) for proj in (self.to_q, self.to_k, self.to_v))
        x = self.attend(*heads, self.scale)  # [B*h*w, heads, T, C/heads]
        x = self.to_out[0](x.transpose(1, 2).flatten(2))  # [B*h*w, T, C]
        return x.unflatten(0, (bt // frames, hw)).transpose(1, 2).flatten(0, 1)  # [B*T, h*w, C]

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # [S, T, C] -> [S, heads, T, C/heads]


class GEGLU(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden_dim * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        # indices match the checkpoints: net.0 = GEGLU, net.1 = dropout (identity at inference), net.2 = Linear
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, attention: AttentionOp, num_attention_blocks: int = 2) -> None:
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            TemporalAttention(dim, num_heads, attention) for _ in range(num_attention_blocks)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_attention_blocks))
        self.ff = FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        # Float32 even under autocast: the q.k scores and the GEGLU product are what exceed float16's range
        # (65504) first when activations or weights are large (notes/reliability.md); a no-op in float32.
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            for attention, norm in zip(self.attention_blocks, self.norms):
                x = x + attention(norm(x), frames)
            return x + self.ff(self.ff_norm(x))


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, num_heads: int, attention: AttentionOp) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, num_heads, attention)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).flatten(0, 1)  # [B*T, C, h, w]
        residual = x
        x = self.norm(x).permute(0, 2, 3, 1).reshape(b * t, h * w, c)  # [B*T, h*w, C]
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, t)
        x = self.proj_out(x).reshape(b * t, h, w, c).permute(0, 3, 1, 2)  # [B*T, C, h, w]
        return (x + residual).unflatten(0, (b, t)).transpose(1, 2)  # [B, C, T, h, w]


class TemporalModule(nn.Module):
    """Mixes information across frames; input and output [B, C, T, h, w]."""

    def __init__(self, channels: int, attention: AttentionOp, num_heads: int = 8) -> None:
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels, num_heads, attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal_transformer(x)
