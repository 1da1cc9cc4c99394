"""The attention implementations, one record each in :data:`ATTENTION`: ``sdpa``, ``xformers``, ``math``.

Every implementation computes ``softmax(q @ k^T * scale) @ v`` for ``q, k, v`` ``[batch, heads, tokens,
head_dim]`` and returns ``[batch, heads, tokens, head_dim]``. :func:`register_attention` adds one; from then on
``build_model(attention=name)`` uses it for the encoder and the temporal attention, and the equivalence
scenario and the tests can list it.

:class:`AttentionOp` calls the selected function over chunks: fused kernels get batches within CUDA's grid limit
(65535 per grid axis, the batch on one axis); implementations that build the score tensor get batches, then
heads, then query blocks whose scores stay within :data:`~vda.runtime.device.MAX_SCORE_BYTES` (MPS cannot hold
one array of 2**32 bytes; one vitl item at a 1036 input alone has 6 GB of scores). Attention is independent per
batch item, head and query row, so the chunks give the same numbers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Union

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
    # (device, options, dtype of the call) -> whether it builds the [batch, heads, Nq, Nk] score tensor
    materialises_scores: Callable[[torch.device, AttentionConfig, torch.dtype], bool]
    # its options, the one home of their defaults (the attention=NAME Hydra group option)
    schema: type = AttentionConfig


ATTENTION: Registry[AttentionImpl] = Registry("attention")


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """The readable reference: explicit matmuls, softmax computed in float32."""
    scores = (q * scale) @ k.transpose(-2, -1)  # [B, h, Nq, Nk]
    weights = scores.float().softmax(dim=-1).to(v.dtype)
    return weights @ v


def call_dtype(q: torch.Tensor) -> torch.dtype:
    """The dtype an autocast-aware op computes ``q`` in: the autocast dtype where autocast is on, else q's."""
    kind = q.device.type
    if torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return q.dtype


def _sdpa_context(kernel: str, device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """SDPA restricted to ``kernel`` for one call; a kernel without a ``dtype`` path on the device gives way to
    efficient/math (flash and cuDNN on CUDA have no float32 path; the temporal blocks run in float32)."""
    if kernel == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {
        "flash": [SDPBackend.FLASH_ATTENTION],
        "efficient": [SDPBackend.EFFICIENT_ATTENTION],
        "math": [SDPBackend.MATH],
        "cudnn": [SDPBackend.CUDNN_ATTENTION],
    }[kernel]
    if dtype == torch.float32 and kernel in facts(device).sdpa_half_only_kernels:
        backends = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return sdpa_kernel(backends)


def make_sdpa(options: SdpaConfig) -> AttentionFn:
    kernel = options.kernel

    def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        with _sdpa_context(kernel, q.device, call_dtype(q)):
            return F.scaled_dot_product_attention(q, k, v, scale=scale)

    return sdpa_attention


def _sdpa_materialises(device: torch.device, options: SdpaConfig, dtype: torch.dtype) -> bool:
    if options.kernel == "math":
        return True
    return options.kernel == "auto" and facts(device).sdpa_auto_materialises(device, dtype)


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    from xformers.ops import memory_efficient_attention

    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # xformers takes [B, N, heads, head_dim]
    return memory_efficient_attention(q, k, v, scale=scale).transpose(1, 2)


def _sdpa_problem(device: torch.device, precision: str, options: SdpaConfig) -> Optional[str]:
    kernel = options.kernel
    if kernel not in SDPA_KERNELS:
        raise ConfigError(f"unknown attention.kernel {kernel!r}; choose one of {', '.join(SDPA_KERNELS)}")
    f = facts(device)
    if kernel not in f.attention_kernels:
        return f"attention.kernel={kernel} is not available on {device.type}; choose one of {', '.join(f.attention_kernels)}"
    problem = f.sdpa_kernel_problem(device, kernel, precision)
    if problem is None and kernel not in ("auto", "math"):
        problem = f.fused_attention_problem(device, precision)
    return problem


def xformers_probe(device: torch.device, dtype: torch.dtype) -> Optional[str]:
    """Why one tiny xformers call fails on ``device`` in ``dtype`` (a build for another torch or CUDA imports,
    then raises at its first call); None when it runs."""
    try:
        q = torch.zeros(1, 8, 1, 64, device=device, dtype=dtype)
        xformers_attention(q, q, q, 1.0)
    except Exception as exc:  # any failure of the third-party build is the answer
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (
            f"attention=xformers is installed but fails a test call on {device} ({type(exc).__name__}: {detail}); "
            f"install the xformers build for torch {torch.__version__} or use attention=sdpa"
        )
    return None


def _xformers_problem(device: torch.device, precision: str, options: AttentionConfig) -> Optional[str]:
    if importlib.util.find_spec("xformers") is None:
        return (
            "attention=xformers needs the xformers package, which is not installed (install the build that "
            "matches your torch on a CUDA machine, see docs/devices.md); use attention=sdpa or attention=math"
        )
    if device.type != "cuda":
        return f"attention=xformers runs on CUDA only, not on {device.type}; use attention=sdpa or attention=math"
    problem = facts(device).fused_attention_problem(device, precision)
    if problem is not None:
        return problem
    return xformers_probe(device, {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32))


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
            materialises_scores=lambda device, options, dtype: materialises_scores,
        ),
        replace=replace,
    )
    return fn


ATTENTION.register(
    "sdpa",
    AttentionImpl(make_sdpa, _sdpa_problem, _sdpa_materialises, SdpaConfig),
    help="torch.nn.functional.scaled_dot_product_attention; attention.kernel=auto|flash|efficient|math|cudnn",
)
ATTENTION.register(
    "xformers",
    AttentionImpl(lambda options: xformers_attention, _xformers_problem, lambda device, options, dtype: False),
    help="xformers.ops.memory_efficient_attention (CUDA only; the build matching your torch, see docs/devices.md)",
)
ATTENTION.register(
    "math",
    AttentionImpl(lambda options: math_attention, lambda device, precision, options: None, lambda device, options, dtype: True),
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


class Split(NamedTuple):
    """Chunk sizes of one attention call: batch items, heads and query rows per kernel call."""

    batch: int
    heads: int
    queries: int


def attention_split(q: torch.Tensor, k: torch.Tensor, materialises_scores: bool) -> Split:
    """How to chunk ``q`` ``[B, heads, Nq, d]`` against ``k`` ``[B, heads, Nk, d]``: the batch within the device's
    grid limit; where the scores are built, batches, then heads, then query blocks within MAX_SCORE_BYTES."""
    batch, heads, queries = q.shape[:3]
    grid_limit = facts(q.device).attention_grid_limit
    if grid_limit is not None:
        batch = min(batch, grid_limit)
    if materialises_scores:
        row_bytes = k.shape[2] * 4  # one query row of float32 scores
        head_bytes = queries * row_bytes
        if heads * head_bytes <= MAX_SCORE_BYTES:
            batch = min(batch, max(1, MAX_SCORE_BYTES // (heads * head_bytes)))
        elif head_bytes <= MAX_SCORE_BYTES:
            batch, heads = 1, MAX_SCORE_BYTES // head_bytes
        else:
            batch, heads, queries = 1, 1, max(1, MAX_SCORE_BYTES // row_bytes)
    return Split(max(batch, 1), heads, queries)


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
        split = attention_split(q, k, self._materialises_scores(q.device, self.options, call_dtype(q)))
        if split == tuple(q.shape[:3]):
            return self.fn(q, k, v, scale)
        return torch.cat([self._heads(q[i : i + split.batch], k[i : i + split.batch], v[i : i + split.batch], scale, split)
                          for i in range(0, q.shape[0], split.batch)])

    def _heads(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, split: Split) -> torch.Tensor:
        return torch.cat([self._queries(q[:, h : h + split.heads], k[:, h : h + split.heads], v[:, h : h + split.heads], scale, split)
                          for h in range(0, q.shape[1], split.heads)], dim=1)

    def _queries(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, split: Split) -> torch.Tensor:
        return torch.cat([self.fn(q[:, :, r : r + split.queries], k, v, scale) for r in range(0, q.shape[2], split.queries)], dim=2)

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
    "Split",
    "attention_problem",
    "attention_split",
    "call_dtype",
    "check_attention",
    "make_sdpa",
    "math_attention",
    "register_attention",
    "SdpaConfig",
    "xformers_attention",
    "xformers_probe",
]
