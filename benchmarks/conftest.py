"""Options of the pytest-benchmark micro-benchmarks (benchmarks/micro/bench_*.py, collected through ``python_files``
in pyproject.toml): attention at the model's real shapes, the encoder and the head, the offline engine, stream
steps, output writing and the shot-cut detector. The figure scripts beside this file (``figure_*.py``) are not collected.
Sizes are CPU-friendly by default; the real workload is one switch away:

    python -m pytest benchmarks                                     # 70x70, 4 frames, vits, cpu/auto
    VDA_BENCH_SIZE=518 VDA_BENCH_FRAMES=32 VDA_BENCH_ENCODERS=vits,vitb,vitl python -m pytest benchmarks
    python -m pytest benchmarks --bench-size 518 --bench-frames 32 --bench-device cuda
    python -m pytest benchmarks --benchmark-disable -q              # smoke run (CI): each case once
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch

from vda.attention import ATTENTION, attention_problem
from vda.runtime.device import resolve_device
from vda.runtime.precision import Precision, resolve_precision

OPTIONS = {
    # option: (environment variable, default, help)
    "size": ("VDA_BENCH_SIZE", "70", "square frame side, a multiple of 14 (real workload: 518)"),
    "frames": ("VDA_BENCH_FRAMES", "4", "frames per window of the encoder and model benchmarks (real: 32)"),
    "encoders": ("VDA_BENCH_ENCODERS", "vits", "comma-separated encoders for the model benchmarks"),
    "device": ("VDA_BENCH_DEVICE", "auto", "auto, cpu, cuda or mps"),
    "precision": ("VDA_BENCH_PRECISION", "auto", "auto (fp16 on cuda, fp32 elsewhere), fp32, fp16 or bf16"),
}


def pytest_addoption(parser):
    group = parser.getgroup("vda benchmarks")
    for name, (env, default, text) in OPTIONS.items():
        group.addoption(f"--bench-{name}", default=None, help=f"{text}; env {env}, default {default}")


@dataclass(frozen=True)
class BenchSettings:
    size: int
    frames: int
    encoders: tuple[str, ...]
    device: torch.device
    precision: Precision

    @property
    def patches(self) -> int:
        return self.size // 14

    def attention_backends(self) -> list[str]:
        """The implementations that can run on the device (the others are not collected)."""
        return [name for name in ATTENTION if attention_problem(name, self.device, self.precision.value) is None]


def _value(config, name: str) -> str:
    env, default, _ = OPTIONS[name]
    return config.getoption(f"--bench-{name}") or os.environ.get(env) or default


def settings_from(config) -> BenchSettings:
    device = resolve_device(_value(config, "device"))
    size = int(_value(config, "size"))
    if size % 14:
        raise pytest.UsageError(f"--bench-size {size} is not a multiple of 14 (e.g. 70, 196, 518)")
    return BenchSettings(
        size=size,
        frames=int(_value(config, "frames")),
        encoders=tuple(e.strip() for e in _value(config, "encoders").split(",") if e.strip()),
        device=device,
        precision=resolve_precision(_value(config, "precision"), device),
    )


def pytest_configure(config):
    config.vda_bench = settings_from(config)


def pytest_report_header(config):
    s = config.vda_bench
    return (
        f"vda benchmarks: size {s.size}, frames {s.frames}, encoders {','.join(s.encoders)}, "
        f"device {s.device}, precision {s.precision.value}, torch threads {torch.get_num_threads()}"
    )


@pytest.fixture(scope="session")
def bench_settings(pytestconfig) -> BenchSettings:
    return pytestconfig.vda_bench
