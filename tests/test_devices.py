"""Device decisions that would break on MPS or CUDA, each checked on CPU (device facts injected or mocked).

Numbers refer to the findings of the devices issue.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from vda import build_model
from vda.attention import SdpaConfig, attention_problem, implementations
from vda.bench.agreement import compare
from vda.errors import DeviceUnavailableError
from vda.runtime import device as device_mod
from vda.runtime.precision import Precision, autocast, fp32_region, resolve_precision

ROOT = Path(__file__).resolve().parents[1]
CUDA, MPS, CPU = torch.device("cuda"), torch.device("mps"), torch.device("cpu")


# 1. autocast is entered only where it exists and for a precision that runs
def test_fp32_never_touches_autocast(monkeypatch):
    """torch 2.4 raised for torch.autocast(device_type="mps", enabled=False): an fp32 run must never build one."""

    def refuse(*args, **kwargs):
        raise RuntimeError("autocast entered in an fp32 run")

    model = build_model("vits", checkpoint="random", device="cpu", precision="fp32")
    monkeypatch.setattr(torch, "autocast", refuse)
    with torch.inference_mode():
        depth = model(torch.randn(1, 2, 3, 28, 28))
    assert depth.shape == (1, 2, 28, 28)


def test_fp32_region_leaves_autocast_only_when_it_is_on():
    assert not isinstance(fp32_region(CPU), torch.autocast)
    with autocast(CPU, Precision.bf16):
        region = fp32_region(CPU)
        assert isinstance(region, torch.autocast)
        with region:
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_half_precision_on_mps_needs_autocast_there(monkeypatch):
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: device_type != "mps")
    with pytest.raises(DeviceUnavailableError, match="precision=fp16 needs autocast on MPS"):
        resolve_precision("fp16", MPS)
    assert resolve_precision("fp32", MPS) is Precision.fp32
    assert resolve_precision("auto", MPS) is Precision.fp32


# 1, 2. the torch floor: MPS autocast (2.5), bf16 and bicubic on MPS (2.6)
def test_mps_needs_the_torch_floor(monkeypatch):
    monkeypatch.setattr(device_mod, "mps_available", lambda: True)
    assert "needs torch>=2.6" in device_mod.MpsFacts().unavailable("2.5.1")
    assert device_mod.MpsFacts().unavailable("2.6.0") is None
    floor = re.search(r'"torch>=([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert tuple(int(x) for x in floor.split(".")[:2]) >= device_mod.MPS_TORCH_FLOOR


# 3. host -> device copies are asynchronous only from pinned memory on CUDA
class CopySpy:
    def __init__(self):
        self.calls = []

    def pin_memory(self):
        self.calls.append("pin_memory")
        return self

    def to(self, device, non_blocking=False):
        self.calls.append(("to", str(device), non_blocking))
        return self


@pytest.mark.parametrize("kind, expected", [("cpu", [("to", "cpu", False)]), ("mps", [("to", "mps", False)]), ("cuda", ["pin_memory", ("to", "cuda", True)])])
def test_copies_are_async_only_from_pinned_memory_on_cuda(kind, expected):
    spy = CopySpy()
    device_mod.to_device(spy, torch.device(kind))
    assert spy.calls == expected


# 4. device tensors are copied to the host before the float64 cast (MPS has no float64)
class CastLog(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.events = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name == "cpu":
            self.events.append("cpu")
        if name == "to" and torch.float64 in (*args[1:], *kwargs.values()):
            self.events.append("float64")
        return func(*args, **kwargs)


def test_equivalence_copies_before_casting():
    with CastLog() as log:
        compare(torch.rand(4, 4) + 0.5, torch.rand(4, 4) + 0.5)
    assert "float64" in log.events
    assert log.events.index("cpu") < log.events.index("float64")


# 5, 6. SDPA kernels and fused kernels refused up front on CUDA where they cannot run
@pytest.fixture
def capability(monkeypatch):
    def set_to(value):
        monkeypatch.setattr(device_mod, "cuda_capability", lambda device: value)

    return set_to


@pytest.mark.parametrize("kernel", ["flash", "cudnn"])
def test_flash_and_cudnn_refuse_fp32(capability, kernel):
    capability((9, 0))
    assert "runs in fp16/bf16 only, not fp32" in attention_problem(SdpaConfig(kernel=kernel), CUDA, "fp32")
    assert attention_problem(SdpaConfig(kernel=kernel), CUDA, "fp16") is None


def test_flash_and_cudnn_need_ampere(capability):
    capability((7, 5))
    assert "needs compute capability 8.0+ (this GPU: 7.5)" in attention_problem(SdpaConfig(kernel="cudnn"), CUDA, "fp16")
    assert attention_problem(SdpaConfig(kernel="efficient"), CUDA, "fp16") is None
    assert attention_problem(SdpaConfig(kernel="efficient"), CUDA, "fp32") is None


def test_bf16_fused_attention_needs_ampere(capability):
    capability((7, 0))  # V100
    assert "no bf16 before compute capability 8.0" in attention_problem(SdpaConfig(kernel="efficient"), CUDA, "bf16")
    assert attention_problem(SdpaConfig(kernel="auto"), CUDA, "bf16") is None  # SDPA falls back to its math kernel
    assert attention_problem("math", CUDA, "bf16") is None
    capability((8, 0))
    assert attention_problem(SdpaConfig(kernel="efficient"), CUDA, "bf16") is None


def test_bf16_refused_before_ampere_on_the_chosen_gpu(monkeypatch):
    """is_bf16_supported() counts emulation and asks the current device: the capability of the chosen one decides."""
    capabilities = {0: (8, 6), 1: (7, 5)}  # cuda:0 Ampere, cuda:1 a T4
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(
        torch.cuda, "get_device_capability", lambda device=None: capabilities[torch.device(device).index or 0]
    )
    assert resolve_precision("bf16", torch.device("cuda:0")) is Precision.bf16
    with pytest.raises(DeviceUnavailableError, match=r"bf16 needs compute capability 8.0\+ on cuda:1 \(this GPU: 7.5\)"):
        resolve_precision("bf16", torch.device("cuda:1"))
    assert resolve_precision("fp16", torch.device("cuda:1")) is Precision.fp16


# 7. attention on MPS is split by bytes (one array below 2**32 bytes)
def test_mps_sdpa_scores_stay_below_the_array_limit(monkeypatch):
    mps_facts = device_mod.DEVICES.get("mps")
    monkeypatch.setattr(implementations, "facts", lambda device: mps_facts)
    # a 32-frame encoder batch at 518x924 on a 16:9 video: 2443 tokens, 6 heads (vits)
    q = torch.empty(32, 6, 2443, 64, device="meta")
    chunk = implementations.attention_split(q, q, mps_facts.sdpa_materialises_scores).batch
    assert chunk < 32 and chunk * 6 * 2443 * 2443 * 4 <= device_mod.MAX_SCORE_BYTES < 2**32


def test_split_attention_gives_the_same_numbers(monkeypatch):
    monkeypatch.setattr(implementations, "MAX_SCORE_BYTES", 2 * 4 * 9 * 9 * 4)  # two batch items per call
    model_split = implementations.AttentionOp("math")
    calls = []
    whole = model_split.fn
    model_split.fn = lambda q, k, v, scale: calls.append(q.shape[0]) or whole(q, k, v, scale)
    q, k, v = (torch.randn(7, 4, 9, 8) for _ in range(3))
    expected = implementations.math_attention(q, k, v, 0.3)
    torch.testing.assert_close(model_split(q, k, v, 0.3), expected)
    assert calls == [2, 2, 2, 1]  # the batch was split, and every item computed once


# 9. CUDA events are recorded on the model's device, not the current one
def test_cuda_events_record_on_the_timed_device(monkeypatch):
    recorded = []

    class Event:
        def __init__(self, enable_timing=False):
            pass

        def record(self, stream=None):
            recorded.append(stream)

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return 1.5

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    watch = device_mod.CudaEventStopwatch(torch.device("cuda:1"))
    watch.start()
    assert watch.stop() == 1.5
    assert recorded == ["stream of cuda:1", "stream of cuda:1"]


DOCUMENTED_AUTO_PRECISION = {"cuda": "fp16", "mps": "fp32", "cpu": "fp32"}  # precision=auto, as the docs promise


@pytest.mark.parametrize("name", device_mod.DEVICES.names())
def test_every_device_record_is_complete(name):
    facts = device_mod.DEVICES.get(name)
    assert isinstance(facts, device_mod.DeviceFacts)
    assert resolve_precision("auto", torch.device(name)).value == DOCUMENTED_AUTO_PRECISION[name]
    assert "auto" in facts.attention_kernels and len(facts.bench_window) == 3
    reason = facts.unavailable()
    assert reason is None or f"device={name}" in reason
