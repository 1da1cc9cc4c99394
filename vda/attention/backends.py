"""The three attention implementations: ``sdpa``, ``xformers`` and ``math``."""

from __future__ import annotations

import contextlib
import importlib.util
from typing import Callable

import torch
import torch.nn.functional as F

from vda.errors import BackendUnavailableError, ConfigError

BACKENDS = ("sdpa", "xformers", "math")
SDPA_KERNELS = ("auto", "flash", "efficient", "math", "cudnn")

# CUDA limits a grid's y/z dimensions to 65535 and the fused kernels launch one block row per batch*head;
# the temporal attention has batch = pixels of a feature map (78k batch*heads at 518 x 924), so split it.
MAX_BATCH_HEADS = 65535

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]

# Which fused SDPA kernels each device type offers.
_SDPA_KERNELS_BY_DEVICE = {
    "cuda": {"auto", "flash", "efficient", "math", "cudnn"},
    "cpu": {"auto", "flash", "math"},
    "mps": {"auto", "math"},
}


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


def split_batch(fn: AttentionFn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Run ``fn`` over batch chunks so that batch*heads never exceeds :data:`MAX_BATCH_HEADS`."""
    chunk = max(1, MAX_BATCH_HEADS // q.shape[1])
    if q.shape[0] <= chunk:
        return fn(q, k, v, scale)
    return torch.cat([fn(q[i : i + chunk], k[i : i + chunk], v[i : i + chunk], scale) for i in range(0, q.shape[0], chunk)])


def make_sdpa(kernel: str = "auto") -> AttentionFn:
    def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)

    def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        with _sdpa_context(kernel):
            if q.is_cuda:
                return split_batch(sdpa, q, k, v, scale)
            return sdpa(q, k, v, scale)

    return sdpa_attention


def _xformers(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    from xformers.ops import memory_efficient_attention

    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # xformers takes [B, N, heads, head_dim]
    return memory_efficient_attention(q, k, v, scale=scale).transpose(1, 2)


def xformers_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """xformers' memory-efficient kernel, batch split to stay within CUDA's grid."""
    return split_batch(_xformers, q, k, v, scale)


def backend_status(name: str, device: torch.device, sdpa_kernel: str = "auto") -> tuple[bool, str]:
    """Whether ``name`` can run on ``device``; the reason when it cannot."""
    device = torch.device(device)
    others = ", ".join(b for b in BACKENDS if b != name)
    if name not in BACKENDS:
        return False, f"unknown attention {name!r}; choose one of {', '.join(BACKENDS)}"
    if name == "xformers":
        if importlib.util.find_spec("xformers") is None:
            return False, (
                "attention=xformers needs the xformers package, which is not installed "
                f"(pip install -e '.[xformers]' on a CUDA machine); use attention=sdpa or attention=math"
            )
        if device.type != "cuda":
            return False, f"attention=xformers runs on CUDA only, not on {device.type}; use {others}"
    if name == "sdpa":
        if sdpa_kernel not in SDPA_KERNELS:
            return False, f"unknown sdpa_kernel {sdpa_kernel!r}; choose one of {', '.join(SDPA_KERNELS)}"
        offered = _SDPA_KERNELS_BY_DEVICE.get(device.type, {"auto", "math"})
        if sdpa_kernel not in offered:
            return False, (
                f"sdpa_kernel={sdpa_kernel} is not available on {device.type}; "
                f"choose one of {', '.join(sorted(offered))}"
            )
    return True, ""


def check_backend(name: str, device: torch.device, sdpa_kernel: str = "auto") -> None:
    """Raise :class:`BackendUnavailableError` (or :class:`ConfigError` for unknown names) if it cannot run."""
    ok, reason = backend_status(name, device, sdpa_kernel)
    if ok:
        return
    if name not in BACKENDS or sdpa_kernel not in SDPA_KERNELS:
        raise ConfigError(reason)
    raise BackendUnavailableError(reason)


def make_attention(name: str, sdpa_kernel: str = "auto") -> AttentionFn:
    if name == "sdpa":
        return make_sdpa(sdpa_kernel)
    if name == "xformers":
        return xformers_attention
    if name == "math":
        return math_attention
    raise ConfigError(f"unknown attention {name!r}; choose one of {', '.join(BACKENDS)}")


class AttentionOp(torch.nn.Module):
    """Holds the selected attention function; has no parameters, so checkpoints are unaffected."""

    def __init__(self, name: str = "sdpa", sdpa_kernel: str = "auto") -> None:
        super().__init__()
        self.set(name, sdpa_kernel)

    def set(self, name: str, sdpa_kernel: str = "auto") -> None:
        self.name = name
        self.sdpa_kernel = sdpa_kernel
        self.fn = make_attention(name, sdpa_kernel)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        return self.fn(q, k, v, scale)

    def extra_repr(self) -> str:
        return self.name if self.name != "sdpa" else f"sdpa, kernel={self.sdpa_kernel}"
