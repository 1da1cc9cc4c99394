"""Attention implementations behind one registry (:data:`ATTENTION`); see :mod:`vda.attention.implementations`.

Public extension point: ``vda.attention.register_attention(name, fn, available=None)``.
"""

from vda.attention.implementations import (
    ATTENTION,
    SDPA_KERNELS,
    AttentionConfig,
    AttentionOp,
    SdpaConfig,
    attention_options,
    attention_problem,
    check_attention,
    math_attention,
    register_attention,
)

__all__ = [
    "ATTENTION",
    "SDPA_KERNELS",
    "AttentionConfig",
    "AttentionOp",
    "SdpaConfig",
    "attention_options",
    "attention_problem",
    "check_attention",
    "math_attention",
    "register_attention",
]
