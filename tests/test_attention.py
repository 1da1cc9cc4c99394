"""Attention backends: agreement, availability checks, batch splitting."""

import pytest
import torch

from vda.attention import backends
from vda.attention.backends import backend_status, check_backend, make_attention, math_attention, split_batch
from vda.errors import BackendUnavailableError, ConfigError
from vda.model import build_model


def qkv(b=3, h=2, n=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g) for _ in range(3)]


def test_math_matches_definition():
    q, k, v = qkv()
    scale = 0.3
    expected = torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v
    torch.testing.assert_close(math_attention(q, k, v, scale), expected)


@pytest.mark.parametrize("kernel", ["auto", "math", "flash"])
def test_sdpa_matches_math(kernel):
    q, k, v = qkv(n=17, d=16)
    out = make_attention("sdpa", kernel)(q, k, v, 0.25)
    torch.testing.assert_close(out, math_attention(q, k, v, 0.25), rtol=1e-5, atol=1e-6)


def test_math_softmax_runs_in_fp32():
    q, k, v = (t.to(torch.bfloat16) for t in qkv(n=64))
    out = math_attention(q, k, v, 1.0)
    ref = math_attention(*(t.float() for t in (q, k, v)), 1.0)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05


def test_split_batch_keeps_results(monkeypatch):
    monkeypatch.setattr(backends, "MAX_BATCH_HEADS", 4)  # 2 heads -> chunks of 2 sequences
    q, k, v = qkv(b=5)
    seen = []

    def spy(q, k, v, scale):
        seen.append(q.shape[0] * q.shape[1])
        return math_attention(q, k, v, scale)

    out = split_batch(spy, q, k, v, 0.5)
    assert seen == [4, 4, 2]
    torch.testing.assert_close(out, math_attention(q, k, v, 0.5))


def test_xformers_refused_here_with_reason():
    ok, reason = backend_status("xformers", torch.device("cpu"))
    assert not ok and ("not installed" in reason or "CUDA only" in reason)
    with pytest.raises(BackendUnavailableError, match="sdpa"):
        build_model("vits", attention="xformers", device="cpu")


def test_sdpa_kernel_checked_per_device():
    with pytest.raises(BackendUnavailableError, match="sdpa_kernel=efficient is not available on cpu"):
        check_backend("sdpa", torch.device("cpu"), "efficient")
    assert backend_status("sdpa", torch.device("cuda"), "cudnn") == (True, "")
    assert backend_status("sdpa", torch.device("mps"), "auto") == (True, "")
    assert not backend_status("sdpa", torch.device("mps"), "flash")[0]


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="choose one of sdpa, xformers, math"):
        check_backend("flash", torch.device("cpu"))
    with pytest.raises(ConfigError, match="unknown sdpa_kernel"):
        check_backend("sdpa", torch.device("cpu"), "fastest")


def test_switching_to_unavailable_backend_keeps_current():
    model = build_model("vits")
    with pytest.raises(BackendUnavailableError):
        model.set_attention("xformers")
    assert model.attention_name == "sdpa"
