"""Attention implementations: every registry record agrees with the definition, availability, batch splitting."""

import pytest
import torch

import vda
import dataclasses
from pathlib import Path

from hydra import compose, initialize_config_dir

from vda.attention import ATTENTION, AttentionOp, SdpaConfig, attention_options, attention_problem, check_attention
from vda.attention import math_attention, register_attention
from vda.attention import implementations
from vda.errors import BackendUnavailableError, ConfigError
from vda.runtime.device import DEVICES
from vda import build_model
from vda.config import to_object
from vda.infer.config import register_configs as register_infer

CONF = Path(__file__).resolve().parents[1] / "conf"

CPU = torch.device("cpu")
RUNNABLE_HERE = [name for name in ATTENTION if attention_problem(name, CPU) is None]


def qkv(b=3, h=2, n=5, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g) for _ in range(3)]


def test_math_matches_definition():
    q, k, v = qkv()
    scale = 0.3
    expected = torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v
    torch.testing.assert_close(math_attention(q, k, v, scale), expected)


@pytest.mark.parametrize("name", RUNNABLE_HERE)
def test_every_runnable_implementation_matches_math(name):
    q, k, v = qkv(n=17, d=16)
    out = AttentionOp(name)(q, k, v, 0.25)
    torch.testing.assert_close(out, math_attention(q, k, v, 0.25), rtol=1e-5, atol=1e-6)


RUNS_ON_CPU = {"sdpa": True, "math": True, "xformers": False}  # xformers is CUDA-only, installed or not


@pytest.mark.parametrize("name", ATTENTION.names())
def test_every_record_says_whether_it_runs_here(name):
    problem = attention_problem(name, CPU)
    if RUNS_ON_CPU[name]:
        assert problem is None
    else:
        assert f"attention={name}" in problem and "use attention=sdpa" in problem and "\n" not in problem


@pytest.mark.parametrize("kernel", ["auto", "math", "flash"])
def test_sdpa_kernels_match_math(kernel):
    q, k, v = qkv(n=17, d=16)
    out = AttentionOp(SdpaConfig(kernel=kernel))(q, k, v, 0.25)
    torch.testing.assert_close(out, math_attention(q, k, v, 0.25), rtol=1e-5, atol=1e-6)


def test_math_softmax_runs_in_fp32():
    q, k, v = (t.to(torch.bfloat16) for t in qkv(n=64))
    out = math_attention(q, k, v, 1.0)
    ref = math_attention(*(t.float() for t in (q, k, v)), 1.0)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05


def test_scores_are_split_by_bytes(monkeypatch):
    # 2 heads x 5 x 5 float32 scores = 200 bytes per batch item: a 450-byte budget gives chunks of 2
    monkeypatch.setattr(implementations, "MAX_SCORE_BYTES", 450)
    q, k, v = qkv(b=5)
    seen = []

    def spy(q, k, v, scale):
        seen.append(q.shape[0])
        return math_attention(q, k, v, scale)

    register_attention("spy", spy)
    try:
        out = AttentionOp("spy")(q, k, v, 0.5)
    finally:
        ATTENTION.unregister("spy")
    assert seen == [2, 2, 1]
    torch.testing.assert_close(out, math_attention(q, k, v, 0.5))


def test_fused_kernels_split_only_by_the_grid_limit(monkeypatch):
    """CUDA's limit is 65535 per grid axis: the batch alone is chunked, whatever the number of heads (the real
    CUDA record, so deleting its limit fails this test)."""
    q = torch.empty(70000, 8, 32, 4, device="meta")
    monkeypatch.setattr(implementations, "facts", lambda device: DEVICES.get("cpu"))
    assert implementations.attention_split(q, q, materialises_scores=False).batch == 70000  # cpu: no grid limit
    monkeypatch.setattr(implementations, "facts", lambda device: DEVICES.get("cuda"))
    assert implementations.attention_split(q, q, materialises_scores=False) == (65535, 8, 32)  # not 65535 // 8 heads


def test_xformers_refused_here_with_reason():
    problem = attention_problem("xformers", CPU)
    assert "not installed" in problem or "CUDA only" in problem
    with pytest.raises(BackendUnavailableError, match="sdpa"):
        build_model("vits", attention="xformers", device="cpu", checkpoint=None)


def test_sdpa_kernel_checked_per_device():
    with pytest.raises(BackendUnavailableError, match="attention.kernel=efficient is not available on cpu"):
        check_attention(SdpaConfig(kernel="efficient"), CPU, "fp32")
    assert attention_problem(SdpaConfig(kernel="auto"), torch.device("mps"), "fp32") is None
    assert "not available on mps" in attention_problem(SdpaConfig(kernel="flash"), torch.device("mps"), "fp32")


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="choose one of sdpa, xformers, math"):
        check_attention("flash", CPU)
    with pytest.raises(ConfigError, match="unknown attention.kernel"):
        check_attention(SdpaConfig(kernel="fastest"), CPU, "fp32")
    with pytest.raises(ConfigError, match="attention=math has no option kernel"):
        attention_options("math", kernel="flash")


@pytest.mark.parametrize("record", ATTENTION.records(), ids=ATTENTION.names())
def test_each_choice_carries_its_own_options(record):
    """The Hydra group option of each implementation is its record's dataclass: sdpa has a kernel, the others
    only their name; build_model takes the same options."""
    register_infer()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_object(compose("infer", overrides=["input=x.mp4", f"attention={record.name}"]))
    assert type(cfg.attention) is record.value.schema and cfg.attention.name == record.name
    fields = {f.name for f in dataclasses.fields(cfg.attention)}
    assert ("kernel" in fields) == (record.name == "sdpa")


def test_build_model_passes_the_options_of_its_attention():
    model = build_model("vits", attention="sdpa", attention_options={"kernel": "math"}, device="cpu", checkpoint=None)
    assert model.attention.options == SdpaConfig(kernel="math")


def test_switching_to_unavailable_implementation_keeps_current():
    model = build_model("vits", checkpoint=None)
    with pytest.raises(BackendUnavailableError):
        model.set_attention("xformers")
    assert model.attention_name == "sdpa"


def test_registered_implementation_runs_end_to_end():
    """The public extension point: one call, then build_model uses it in the encoder and the temporal attention."""
    calls = {"tokens": set()}

    def tanh_attention(q, k, v, scale):  # a different, valid attention: scores squashed before the softmax
        calls["tokens"].add(q.shape[2])
        return torch.softmax(torch.tanh(q @ k.transpose(-1, -2) * scale), dim=-1) @ v

    vda.register_attention("tanh", tanh_attention, available=lambda device: None)
    try:
        assert "tanh" in ATTENTION.names()
        model = build_model("vits", attention="tanh", checkpoint="random", device="cpu", precision="fp32")
        reference = build_model("vits", attention="math", checkpoint="random", device="cpu", precision="fp32")
        x = torch.randn(1, 3, 3, 28, 42, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            depth, expected = model(x), reference(x)
        assert calls["tokens"] == {1 + 2 * 3, 3}  # encoder: cls + 2x3 patches; temporal: 3 frames
        assert depth.shape == expected.shape and torch.isfinite(depth).all()
        assert not torch.allclose(depth, expected)
        with pytest.raises(ConfigError, match="already registered"):
            vda.register_attention("tanh", tanh_attention)
    finally:
        ATTENTION.unregister("tanh")


def test_registered_availability_is_honoured():
    register_attention("never", math_attention, available=lambda device: f"attention=never cannot run on {device.type}")
    try:
        with pytest.raises(BackendUnavailableError, match="attention=never cannot run on cpu"):
            build_model("vits", attention="never", checkpoint=None)
    finally:
        ATTENTION.unregister("never")
