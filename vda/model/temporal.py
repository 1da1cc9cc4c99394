"""Temporal module of the DPT head: attention over the time axis at every spatial position."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vda.attention import AttentionOp
from vda.runtime.precision import fp32_region

MAX_FRAMES = 32  # length of the sinusoidal table stored in the checkpoints
# The temporal blocks compute in float32 whatever the precision (see TemporalTransformerBlock.forward).
TEMPORAL_DTYPE = torch.float32

# Streaming rule: context = list[:STREAM_HEAD] + list[-STREAM_TAIL:] + the new frame (32 slots); the list
# starts as frame 0 repeated MAX_FRAMES times and, from frame STREAM_DROP_AFTER + 1 on, loses its entry at
# index 1 whenever a frame is appended, so it holds STREAM_LIST frames from then on.
STREAM_HEAD = 2
STREAM_TAIL = MAX_FRAMES - 1 - STREAM_HEAD
STREAM_DROP_AFTER = 10
STREAM_LIST = MAX_FRAMES + STREAM_DROP_AFTER
STREAM_ROWS = 1 + STREAM_LIST  # ring rows: frame 0, then the latest STREAM_LIST frames (the new one included)


def stream_list(frame: int) -> list[int]:
    """Source frames held by the streaming list once ``frame`` (>= 0) has been appended, in list order."""
    if frame < 0:
        raise ValueError(f"frame index must be >= 0, got {frame}")
    zeros = min(MAX_FRAMES, max(1, STREAM_LIST - frame))  # copies of frame 0 not deleted yet
    return [0] * zeros + list(range(max(1, frame - STREAM_LIST + 2), frame + 1))


def context_frames(frame: int) -> list[int]:
    """Source frames of the first slots of ``frame``'s temporal context (``frame`` itself takes the last slot).

    Frame 0 has no context (the network sees it alone); frame t >= 1 gets 31 frames,
    ``list[:2] + list[-29:]`` of the list as it was after frame t-1; e.g. t=59 -> [0, 18, 30, 31, ..., 58].
    """
    if frame == 0:
        return []
    held = stream_list(frame - 1)
    return held[:STREAM_HEAD] + held[-STREAM_TAIL:]


def stream_row(frame: int) -> int:
    """Ring-buffer row of ``frame``: 0 for frame 0, the latest ``STREAM_LIST`` frames cycle over the rest."""
    return 0 if frame == 0 else 1 + (frame - 1) % STREAM_LIST


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

    def forward(self, x: torch.Tensor, frames: int, memory: Optional["AttentionMemory"] = None) -> torch.Tensor:
        if memory is not None:
            return memory(self, x)
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

    def forward(
        self, x: torch.Tensor, frames: int, memories: Optional[Sequence["AttentionMemory"]] = None
    ) -> torch.Tensor:
        # Float32 even under autocast: the q.k scores and the GEGLU product are what exceed float16's range
        # (65504) first when activations or weights are large (see the README); a no-op in float32.
        memories = memories if memories is not None else [None] * len(self.attention_blocks)
        with fp32_region(x.device):
            x = x.to(TEMPORAL_DTYPE)
            for attention, norm, memory in zip(self.attention_blocks, self.norms, memories, strict=True):
                x = x + attention(norm(x), frames, memory)
            return x + self.ff(self.ff_norm(x))


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, num_heads: int, attention: AttentionOp) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, num_heads, attention)])
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, memories: Optional[Sequence["AttentionMemory"]] = None) -> torch.Tensor:
        """``memories``: one per attention block of the (single) transformer block, for a streaming step."""
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).flatten(0, 1)  # [B*T, C, h, w]
        residual = x
        x = self.norm(x).permute(0, 2, 3, 1).reshape(b * t, h * w, c)  # [B*T, h*w, C]
        x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, t, memories)
        x = self.proj_out(x).reshape(b * t, h, w, c).permute(0, 3, 1, 2)  # [B*T, C, h, w]
        return (x + residual).unflatten(0, (b, t)).transpose(1, 2)  # [B, C, T, h, w]


class TemporalModule(nn.Module):
    """Mixes information across frames; input and output [B, C, T, h, w]."""

    def __init__(self, channels: int, attention: AttentionOp, num_heads: int = 8) -> None:
        super().__init__()
        self.temporal_transformer = TemporalTransformer(channels, num_heads, attention)

    def forward(self, x: torch.Tensor, memories: Optional[Sequence["AttentionMemory"]] = None) -> torch.Tensor:
        return self.temporal_transformer(x, memories)

    @property
    def attention_blocks(self) -> int:
        return sum(len(block.attention_blocks) for block in self.temporal_transformer.transformer_blocks)


class AttentionMemory:
    """Streaming state of one temporal attention block: a ring of per-frame rows ``[h*w, STREAM_ROWS, C]``.

    Called in place of the block's offline forward with the new frame's input ``x`` ``[1, h*w, C]`` (the
    block's LayerNorm output), it stores the frame in its ring row and attends from the new frame over the
    rows ``stream.rows`` (context frames, then the new frame), the positional table added over those slots.

    With ``cached_projections`` the rows hold ``x W_k`` and ``x W_v``, projected once when the frame
    arrives, and the projected table ``pe W_k``, ``pe W_v`` (computed once) is added per slot: since
    ``to_k``/``to_v`` have no bias this is ``(x + pe) W`` up to rounding. Otherwise the rows hold ``x`` and
    all slots are re-projected every step, the rule as published.
    """

    def __init__(self, stream: "StreamCache") -> None:
        self.stream = stream
        self.rows: Optional[tuple[torch.Tensor, ...]] = None  # (keys, values) or (inputs,): [h*w, ROWS, C]
        self.table: Optional[tuple[torch.Tensor, ...]] = None  # projected positional tables, [MAX_FRAMES, C]

    @property
    def nbytes(self) -> int:
        held = (self.rows or ()) + (self.table or ())
        return sum(t.numel() * t.element_size() for t in held)

    def _store(self, values: tuple[torch.Tensor, ...], hw: int) -> None:
        if self.rows is not None and self.rows[0].shape[0] != hw:
            raise ValueError(f"stream frames changed size: {self.rows[0].shape[0]} -> {hw} positions; reset first")
        if self.rows is None:
            self.rows = tuple(v.new_zeros(hw, STREAM_ROWS, v.shape[-1]) for v in values)
        row = stream_row(self.stream.frame)
        for buffer, value in zip(self.rows, values, strict=True):
            buffer[:, row] = value

    def __call__(self, block: TemporalAttention, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 1:
            raise ValueError(f"a streaming step takes one frame, got {x.shape[0]}")
        y = x[0]  # [h*w, C]
        rows = self.stream.rows
        slots = rows.numel()
        pe = block.pos_encoder.pe[0, :slots].to(y.dtype)  # [slots, C]
        if self.stream.cached_projections:
            if self.table is None:
                table = block.pos_encoder.pe[0].to(y.dtype)  # [MAX_FRAMES, C]
                self.table = (block.to_k(table), block.to_v(table))
            self._store((block.to_k(y), block.to_v(y)), y.shape[0])
            k, v = (buf.index_select(1, rows) + tab[:slots] for buf, tab in zip(self.rows, self.table))
            q = block.to_q(y + pe[-1]).unsqueeze(1)  # [h*w, 1, C]
        else:
            self._store((y,), y.shape[0])
            context = self.rows[0].index_select(1, rows) + pe  # [h*w, slots, C]
            q, k, v = block.to_q(context[:, -1:]), block.to_k(context), block.to_v(context)
        out = block.attend(*(block._split_heads(t) for t in (q, k, v)), block.scale)  # [h*w, heads, 1, C/heads]
        return block.to_out[0](out.transpose(1, 2).flatten(2)).transpose(0, 1)  # [1, h*w, C]


class StreamCache:
    """The streaming state of the head's temporal blocks for one video: one :class:`AttentionMemory` each.

    Bracket each frame's head forward with :meth:`begin` / :meth:`end`; :meth:`reset` forgets the video.
    """

    def __init__(self, cached_projections: bool = True) -> None:
        self.cached_projections = cached_projections
        self.frame = 0  # index of the frame being (or next to be) processed
        self.rows: Optional[torch.Tensor] = None  # ring rows of this step's slots
        self.memories: dict[tuple[int, int], AttentionMemory] = {}

    def new_memory(self) -> AttentionMemory:
        return AttentionMemory(self)

    def module(self, index: int, blocks: int) -> list[AttentionMemory]:
        """The memories of temporal module ``index`` (``blocks`` attention blocks)."""
        return [self.memories.setdefault((index, i), self.new_memory()) for i in range(blocks)]

    def begin(self, device: torch.device) -> None:
        frames = context_frames(self.frame) + [self.frame]
        self.rows = torch.tensor([stream_row(f) for f in frames], device=device)

    def end(self) -> None:
        self.rows = None
        self.frame += 1

    def reset(self) -> None:
        self.frame, self.rows, self.memories = 0, None, {}

    @property
    def nbytes(self) -> int:
        return sum(memory.nbytes for memory in self.memories.values())
