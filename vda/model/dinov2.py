"""DINOv2 ViT encoder (patch 14), laid out as the official checkpoints' ``pretrained.*`` keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vda.attention import AttentionOp
from vda.model.fused import fused_applies, linear_gelu_linear

PATCH_SIZE = 14
PRETRAIN_GRID = 37  # the table is built for 518 x 518 = 37 x 37 patches
POS_INTERPOLATE_OFFSET = 0.1


class PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch_size: int = PATCH_SIZE) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, 3, H, W] -> [N, ph*pw, D]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, attention: AttentionOp) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.attend = attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(n, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [N, heads, tokens, head_dim]
        x = self.attend(q, k, v, self.scale)
        return self.proj(x.transpose(1, 2).reshape(n, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fused_applies(x):
            return linear_gelu_linear(x, self.fc1, self.fc2)
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``residual + x * gamma``, in one pass over the tokens (in the residual's float32 under autocast, as
        the promotion of ``x * gamma`` gave)."""
        return torch.addcmul(residual, x.to(residual.dtype), self.gamma)


class Block(nn.Module):
    """Pre-norm transformer block with layer scale."""

    def __init__(self, dim: int, num_heads: int, attention: AttentionOp) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SelfAttention(dim, num_heads, attention)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ls1(x, self.attn(self.norm1(x)))
        return self.ls2(x, self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    def __init__(self, dim: int, depth: int, num_heads: int, attention: AttentionOp) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + PRETRAIN_GRID**2, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # in the checkpoints, unused at inference
        self.blocks = nn.ModuleList(Block(dim, num_heads, attention) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, tokens: int, rows: int, cols: int, dtype: torch.dtype) -> torch.Tensor:
        """Positional table for a ``rows x cols`` patch grid (bicubic by scale factor, in float32)."""
        if tokens == self.pos_embed.shape[1] and rows == cols:
            return self.pos_embed.to(dtype)
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, PRETRAIN_GRID, PRETRAIN_GRID, -1).permute(0, 3, 1, 2)  # [1, D, 37, 37]
        factor = ((rows + POS_INTERPOLATE_OFFSET) / PRETRAIN_GRID, (cols + POS_INTERPOLATE_OFFSET) / PRETRAIN_GRID)
        grid = F.interpolate(grid, scale_factor=factor, mode="bicubic", antialias=False)  # [1, D, rows, cols]
        grid = grid.permute(0, 2, 3, 1).flatten(1, 2)  # [1, rows*cols, D]
        return torch.cat([pos[:, :1], grid], dim=1).to(dtype)

    def embed(self, x: torch.Tensor, pos_table: torch.Tensor | None = None) -> torch.Tensor:
        """Patch tokens plus positions; ``pos_table`` is the grid's table precomputed (a constant in exported graphs)."""
        rows, cols = x.shape[-2] // PATCH_SIZE, x.shape[-1] // PATCH_SIZE
        x = self.patch_embed(x)
        # cat promotes to the cls token's float32 under autocast, as in the original: the residual stream stays fp32
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # [N, 1+ph*pw, D]
        if pos_table is None:
            pos_table = self.interpolate_pos_encoding(x.shape[1], rows, cols, torch.float32)
        return x + pos_table.to(x.dtype)

    def get_intermediate_layers(
        self, x: torch.Tensor, indices: tuple[int, ...], pos_table: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """Normed outputs of the blocks in ``indices`` without the cls token: each [N, ph*pw, D]."""
        x = self.embed(x, pos_table)
        outputs = []
        for i, block in enumerate(self.blocks[: max(indices) + 1]):
            x = block(x)
            if i in indices:
                outputs.append(self.norm(x)[:, 1:])
        return tuple(outputs)
