"""The encoder's MLP on x86 CPUs in float32: oneDNN's linear with the bias and the GELU applied inside the GEMM.

Eager torch runs ``fc1 -> GELU -> fc2`` as a bias copy and a GEMM, a GELU pass and another bias copy and GEMM,
each pass over an ``[N*tokens, 4*D]`` activation; oneDNN's linear primitive (the one torch.compile's CPU backend
emits for the same pattern) does the bias and the GELU while the GEMM's output is in cache. With the layer scale
in one pass (``LayerScale``), the encoder's stage of a vits run at input 252 took 3 % less (docs/performance.md);
the numbers agree to float32 rounding (relative L2 4e-7). Everywhere else (other devices and dtypes, autocast,
gradients, tracing and export) the plain ``nn.Linear``/``nn.GELU`` modules run.
"""

from __future__ import annotations

import torch
from torch import nn

# x86 builds with oneDNN register the op; the capability names which vector unit torch dispatches to
ONEDNN_LINEAR = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
)


def fused_applies(x: torch.Tensor) -> bool:
    """Whether ``x`` may take the fused path: a float32 CPU tensor, no autocast, no autograd, no tracing."""
    return (
        ONEDNN_LINEAR
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()  # torch.compile, torch.export and so the ONNX export
        and not torch.jit.is_tracing()
    )


def linear_gelu_linear(x: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear) -> torch.Tensor:
    """``fc2(gelu(fc1(x)))`` (exact, erf GELU) through oneDNN's fused linear; the caller checks :func:`fused_applies`."""
    hidden = torch.ops.mkldnn._linear_pointwise(x, fc1.weight, fc1.bias, "gelu", [None], "none")
    return torch.ops.mkldnn._linear_pointwise(hidden, fc2.weight, fc2.bias, "none", [], "")


__all__ = ["ONEDNN_LINEAR", "fused_applies", "linear_gelu_linear"]
