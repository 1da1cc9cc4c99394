"""Device and precision resolution, and that no path hard-codes CUDA."""

import re
from pathlib import Path

import pytest
import torch

import vda
from vda.errors import ConfigError, DeviceUnavailableError
from vda import build_model
from vda.runtime import device as device_mod
from vda.runtime.precision import Precision, autocast, resolve_precision


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    assert device_mod.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(device_mod, "mps_available", lambda: True)
    assert device_mod.resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_mod.resolve_device("auto") == torch.device("cuda")


def test_unavailable_devices_fail_before_work(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="device=mps .* use device=cpu"):
        build_model("vits", device="mps")
    with pytest.raises(DeviceUnavailableError, match="device=cuda"):
        build_model("vits", device="cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        device_mod.resolve_device("tpu")


def test_precision_resolution(monkeypatch):
    assert resolve_precision("auto", torch.device("cuda")) is Precision.fp16
    assert resolve_precision("auto", torch.device("mps")) is Precision.fp32
    assert resolve_precision("auto", torch.device("cpu")) is Precision.fp32
    assert resolve_precision("bf16", torch.device("cpu")) is Precision.bf16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(DeviceUnavailableError, match="bf16 needs compute capability 8.0"):
        resolve_precision("bf16", torch.device("cuda"))
    with pytest.raises(ConfigError, match="unknown precision"):
        resolve_precision("fp8", torch.device("cpu"))


@pytest.mark.filterwarnings("ignore:CUDA is not available")
@pytest.mark.parametrize("kind", ["cpu", "mps", "cuda"])
def test_autocast_targets_the_device_in_use(kind, monkeypatch):
    entered, real = [], torch.autocast

    def spy(device_type, **kwargs):
        entered.append(device_type)
        return real(device_type, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    with autocast(torch.device(kind), Precision.fp16):
        pass
    with autocast(torch.device(kind), Precision.fp32):
        pass
    assert entered == [kind]  # fp16 on the device in use; fp32 enters no autocast


def test_library_never_hard_codes_cuda_autocast():
    root = Path(vda.__file__).parent
    pattern = re.compile(r"autocast\(\s*(device_type\s*=\s*)?[\"']cuda[\"']|torch\.cuda\.amp")
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
