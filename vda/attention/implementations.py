"""The attention implementations, one record each in :data:`ATTENTION`: ``sdpa``, ``xformers``, ``math``.

Every implementation computes ``softmax(q @ k^T * scale) @ v`` for ``q, k, v`` ``[batch, heads, tokens,
head_dim]`` and returns ``[batch, heads, tokens, head_dim]``. :func:`register_attention` adds one; from then on
``build_model(attention=name)`` uses it for the encoder and the temporal attention, and the equivalence
scenario and the tests can list it.

:class:`AttentionOp` calls the selected function over batch chunks: fused kernels within CUDA's grid limit
(65535 per grid axis, the batch on one axis), and implementations that build the score tensor within
:data:`~vda.runtime.device.MAX_SCORE_BYTES` (MPS cannot hold one array of 2**32 bytes).
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from vda.errors import BackendUnavailableError, ConfigError
from vda.registry import Registry
from vda.runtime.device import MAX_SCORE_BYTES, facts

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
SDPA_KERNELS = ("auto", "flash", "efficient", "math", "cudnn")


@dataclass(frozen=True)
class AttentionImpl:
    # sdpa_kernel -> the function (only sdpa reads the kernel)
    make: Callable[[str], AttentionFn]
    # (device, precision, sdpa_kernel) -> why it cannot run there, None when it can
    problem: Callable[[torch.device, str, str], Optional[str]]
    # whether it builds the [batch, heads, Nq, Nk] score tensor on this device
    materialises_scores: Callable[[torch.device], bool]


ATTENTION: Registry[AttentionImpl] = Registry("attention")


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """The readable reference: explicit matmuls, softmax computed in float32."""
    scores = (q * scale) @ k.transpose(-2, -1)  # [B, h, Nq, Nk]
    weights = scores.float().softmax(dim=-1).to(v.dtype)
    return weights @ v


def _sdpa_context(kernel: str) -> contextlib.AbstractContextManager:
    if kernel == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
    }[kernel]
    return sdpa_kernel(backend)


def make_sdpa(kernel: str = "auto") -> AttentionFn:
    def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        with _sdpa_context(kernel):
            return F.scaled_dot_product_attention(q, k, v, scale=scale)

    return sdpa_attention


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    from xformers.ops import memory_efficient_attention

    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # xformers takes [B, N, heads, head_dim]
    return memory_efficient_attention(q, k, v, scale=scale).transpose(1, 2)


def _sdpa_problem(device: torch.device, precision: str, kernel: str) -> Optional[str]:
    f = facts(device)
    if kernel not in f.sdpa_kernels:
        return f"sdpa_kernel={kernel} is not available on {device.type}; choose one of {', '.join(f.sdpa_kernels)}"
    problem = f.sdpa_kernel_problem(device, kernel, precision)
    if problem is None and kernel not in ("auto", "math"):
        problem = f.fused_attention_problem(device, precision)
    return problem


def _xformers_problem(device: torch.device, precision: str, kernel: str) -> Optional[str]:
    if importlib.util.find_spec("xformers") is None:
        return (
            "attention=xformers needs the xformers package, which is not installed "
            "(pip install -e '.[xformers]' on a CUDA machine); use attention=sdpa or attention=math"
        )
    if device.type != "cuda":
        return f"attention=xformers runs on CUDA only, not on {device.type}; use attention=sdpa or attention=math"
    return facts(device).fused_attention_problem(device, precision)


def register_attention(
    name: str,
    fn: AttentionFn,
    available: Optional[Callable[[torch.device], Optional[str]]] = None,
    *,
    materialises_scores: bool = True,
    replace: bool = False,
) -> AttentionFn:
    """Add an attention implementation ``fn(q, k, v, scale) -> out`` on ``[batch, heads, tokens, head_dim]``.

    ``available(device)`` returns why it cannot run on ``device`` (None when it can). Leave
    ``materialises_scores`` true unless ``fn`` never builds the score tensor: the batch is then split so that
    one call's scores stay within ``MAX_SCORE_BYTES``.
    """
    ATTENTION.register(
        name,
        AttentionImpl(
            make=lambda kernel: fn,
            problem=lambda device, precision, kernel: available(device) if available is not None else None,
            materialises_scores=lambda device: materialises_scores,
        ),
        replace=replace,
    )
    return fn


ATTENTION.register(
    "sdpa",
    AttentionImpl(make_sdpa, _sdpa_problem, lambda device: facts(device).sdpa_materialises_scores),
    help="torch.nn.functional.scaled_dot_product_attention; attention.sdpa_kernel=auto|flash|efficient|math|cudnn",
)
ATTENTION.register(
    "xformers",
    AttentionImpl(lambda kernel: xformers_attention, _xformers_problem, lambda device: False),
    help="xformers.ops.memory_efficient_attention (CUDA only; pip install -e '.[xformers]')",
)
ATTENTION.register(
    "math",
    AttentionImpl(lambda kernel: math_attention, lambda device, precision, kernel: None, lambda device: True),
    help="explicit matmul + softmax in fp32: the readable reference",
)


def attention_problem(name: str, device: torch.device, precision: str = "fp32", sdpa_kernel: str = "auto") -> Optional[str]:
    """Why ``name`` cannot run on ``device`` at ``precision``; None when it can. Unknown names raise ConfigError."""
    impl = ATTENTION.get(name)
    if sdpa_kernel not in SDPA_KERNELS:
        raise ConfigError(f"unknown attention.sdpa_kernel {sdpa_kernel!r}; choose one of {', '.join(SDPA_KERNELS)}")
    return impl.problem(torch.device(device), str(getattr(precision, "value", precision)), sdpa_kernel)


def check_attention(name: str, device: torch.device, precision: str = "fp32", sdpa_kernel: str = "auto") -> None:
    """Raise :class:`BackendUnavailableError` (ConfigError for unknown names) if ``name`` cannot run."""
    problem = attention_problem(name, device, precision, sdpa_kernel)
    if problem is not None:
        raise BackendUnavailableError(problem)


def batch_chunk(q: torch.Tensor, k: torch.Tensor, materialises_scores: bool) -> int:
    """Largest batch one kernel call may take for ``q`` ``[B, heads, Nq, d]`` against ``k`` ``[B, heads, Nk, d]``."""
    chunk = q.shape[0]
    grid_limit = facts(q.device).attention_grid_limit
    if grid_limit is not None:
        chunk = min(chunk, grid_limit)
    if materialises_scores:
        score_bytes = q.shape[1] * q.shape[2] * k.shape[2] * 4  # float32 softmax
        chunk = min(chunk, max(1, MAX_SCORE_BYTES // score_bytes))
    return max(chunk, 1)


class AttentionOp(torch.nn.Module):
    """Holds the selected attention function; has no parameters, so checkpoints are unaffected."""

    def __init__(self, name: str = "sdpa", sdpa_kernel: str = "auto") -> None:
        super().__init__()
        self.set(name, sdpa_kernel)

    def set(self, name: str, sdpa_kernel: str = "auto") -> None:
        impl = ATTENTION.get(name)
        self.name, self.sdpa_kernel = name, sdpa_kernel
        self.fn = impl.make(sdpa_kernel)
        self._materialises_scores = impl.materialises_scores

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        chunk = batch_chunk(q, k, self._materialises_scores(q.device))
        if q.shape[0] <= chunk:
            return self.fn(q, k, v, scale)
        return torch.cat([self.fn(q[i : i + chunk], k[i : i + chunk], v[i : i + chunk], scale) for i in range(0, q.shape[0], chunk)])

    def extra_repr(self) -> str:
        return self.name if self.name != "sdpa" else f"sdpa, kernel={self.sdpa_kernel}"


__all__ = [
    "ATTENTION",
    "SDPA_KERNELS",
    "AttentionFn",
    "AttentionImpl",
    "AttentionOp",
    "attention_problem",
    "batch_chunk",
    "check_attention",
    "make_sdpa",
    "math_attention",
    "register_attention",
    "xformers_attention",
]
