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
import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

from vda.errors import BackendUnavailableError, ConfigError
from vda.registry import Registry
from vda.runtime.device import MAX_SCORE_BYTES, facts

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]
SDPA_KERNELS = ("auto", "flash", "efficient", "math", "cudnn")


@dataclass
class AttentionConfig:
    """The options every attention implementation has (its name); one with options subclasses this."""

    name: str = "sdpa"


@dataclass
class SdpaConfig(AttentionConfig):
    name: str = "sdpa"
    # Which fused kernel torch may use: auto, flash, efficient, math or cudnn.
    kernel: str = "auto"


Choice = Union[str, AttentionConfig]


@dataclass(frozen=True)
class AttentionImpl:
    # options (an instance of schema) -> the function
    make: Callable[[AttentionConfig], AttentionFn]
    # (device, precision, options) -> why it cannot run there, None when it can
    problem: Callable[[torch.device, str, AttentionConfig], Optional[str]]
    # whether it builds the [batch, heads, Nq, Nk] score tensor on this device
    materialises_scores: Callable[[torch.device], bool]
    # its options, the one home of their defaults (the attention=NAME Hydra group option)
    schema: type = AttentionConfig


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


def make_sdpa(options: SdpaConfig) -> AttentionFn:
    kernel = options.kernel

    def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        with _sdpa_context(kernel):
            return F.scaled_dot_product_attention(q, k, v, scale=scale)

    return sdpa_attention


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    from xformers.ops import memory_efficient_attention

    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # xformers takes [B, N, heads, head_dim]
    return memory_efficient_attention(q, k, v, scale=scale).transpose(1, 2)


def _sdpa_problem(device: torch.device, precision: str, options: SdpaConfig) -> Optional[str]:
    kernel = options.kernel
    if kernel not in SDPA_KERNELS:
        raise ConfigError(f"unknown attention.kernel {kernel!r}; choose one of {', '.join(SDPA_KERNELS)}")
    f = facts(device)
    if kernel not in f.sdpa_kernels:
        return f"attention.kernel={kernel} is not available on {device.type}; choose one of {', '.join(f.sdpa_kernels)}"
    problem = f.sdpa_kernel_problem(device, kernel, precision)
    if problem is None and kernel not in ("auto", "math"):
        problem = f.fused_attention_problem(device, precision)
    return problem


def _xformers_problem(device: torch.device, precision: str, options: AttentionConfig) -> Optional[str]:
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
            make=lambda options: fn,
            problem=lambda device, precision, options: available(device) if available is not None else None,
            materialises_scores=lambda device: materialises_scores,
        ),
        replace=replace,
    )
    return fn


ATTENTION.register(
    "sdpa",
    AttentionImpl(make_sdpa, _sdpa_problem, lambda device: facts(device).sdpa_materialises_scores, SdpaConfig),
    help="torch.nn.functional.scaled_dot_product_attention; attention.kernel=auto|flash|efficient|math|cudnn",
)
ATTENTION.register(
    "xformers",
    AttentionImpl(lambda options: xformers_attention, _xformers_problem, lambda device: False),
    help="xformers.ops.memory_efficient_attention (CUDA only; pip install -e '.[xformers]')",
)
ATTENTION.register(
    "math",
    AttentionImpl(lambda options: math_attention, lambda device, precision, options: None, lambda device: True),
    help="explicit matmul + softmax in fp32: the readable reference",
)


def attention_options(choice: Choice, **options) -> AttentionConfig:
    """The options record of an implementation: from its name (and keyword options), or any
    :class:`AttentionConfig` retyped as its implementation's schema. ConfigError for an unknown name or option."""
    if isinstance(choice, AttentionConfig):
        options = {**{f.name: getattr(choice, f.name) for f in dataclasses.fields(choice)}, **options}
        choice = options.pop("name")
    schema = ATTENTION.get(choice).schema
    fields = [f.name for f in dataclasses.fields(schema) if f.name != "name"]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"attention={choice} has no option {', '.join(unknown)}; its options: {', '.join(fields) or 'none'}")
    return schema(name=choice, **options)


def attention_problem(choice: Choice, device: torch.device, precision: str = "fp32") -> Optional[str]:
    """Why ``choice`` (a name or its options) cannot run on ``device`` at ``precision``; None when it can.
    Unknown names and option values raise ConfigError."""
    options = attention_options(choice)
    return ATTENTION.get(options.name).problem(torch.device(device), str(getattr(precision, "value", precision)), options)


def check_attention(choice: Choice, device: torch.device, precision: str = "fp32") -> AttentionConfig:
    """Its options when ``choice`` can run; raise :class:`BackendUnavailableError` (ConfigError if unknown) if not."""
    options = attention_options(choice)
    problem = attention_problem(options, device, precision)
    if problem is not None:
        raise BackendUnavailableError(problem)
    return options


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

    def __init__(self, choice: Choice = AttentionConfig.name) -> None:
        super().__init__()
        self.set(choice)

    def set(self, choice: Choice) -> None:
        """Use ``choice`` (a name, with default options, or its options record) from now on."""
        self.options = attention_options(choice)
        impl = ATTENTION.get(self.options.name)
        self.name = self.options.name
        self.fn = impl.make(self.options)
        self._materialises_scores = impl.materialises_scores

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        chunk = batch_chunk(q, k, self._materialises_scores(q.device))
        if q.shape[0] <= chunk:
            return self.fn(q, k, v, scale)
        return torch.cat([self.fn(q[i : i + chunk], k[i : i + chunk], v[i : i + chunk], scale) for i in range(0, q.shape[0], chunk)])

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.options, f.name)}" for f in dataclasses.fields(self.options))


__all__ = [
    "ATTENTION",
    "SDPA_KERNELS",
    "AttentionConfig",
    "AttentionFn",
    "AttentionImpl",
    "AttentionOp",
    "attention_options",
    "attention_problem",
    "batch_chunk",
    "check_attention",
    "make_sdpa",
    "math_attention",
    "register_attention",
    "SdpaConfig",
    "xformers_attention",
]
