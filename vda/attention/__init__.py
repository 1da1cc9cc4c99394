"""Attention implementations behind one registry.

Every backend computes ``softmax(q @ k^T * scale) @ v`` for ``q, k, v`` of shape ``[B, heads, N, head_dim]``
and returns ``[B, heads, N, head_dim]``. The encoder self-attention and the temporal attention both call
the backend through :class:`AttentionOp`, so switching is one attribute on each module.
"""

from vda.attention.backends import (
    BACKENDS,
    SDPA_KERNELS,
    AttentionOp,
    backend_status,
    check_backend,
    make_attention,
)

__all__ = ["BACKENDS", "SDPA_KERNELS", "AttentionOp", "backend_status", "check_backend", "make_attention"]
