"""Backend ``compile``: ``torch.compile`` (inductor) of the encoder and head graphs, under the model's autocast."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional

import torch

from vda.backends.base import BackendConfig, register_backend
from vda.backends.graphs import EncoderGraph, HeadGraph
from vda.backends.runners import GraphRunner
from vda.errors import ConfigError
from vda.model.video_depth_anything import Features, VideoDepthAnything
from vda.runtime.device import torch_version
from vda.runtime.precision import autocast

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# Inductor fails on this model on MPS before torch 2.8.
COMPILE_MPS_TORCH_FLOOR = (2, 8)


@dataclass
class CompileConfig(BackendConfig):
    name: str = "compile"
    # torch.compile mode: default, reduce-overhead or max-autotune.
    mode: str = "default"


class CompiledRunner(GraphRunner):
    """``torch.compile`` of the encoder and head graphs (positional table constant), under the model's autocast."""

    backend = "compile"

    def __init__(self, model: VideoDepthAnything, mode: str = CompileConfig.mode) -> None:
        if mode not in COMPILE_MODES:
            raise ConfigError(f"unknown compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
        super().__init__(model)
        self.mode = mode
        self.first_calls: set[tuple[str, tuple[int, int]]] = set()

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        mode = None if self.mode == "default" else self.mode
        return tuple(
            (torch.compile(graph(self.model, patch_hw).eval(), mode=mode), kind, patch_hw)
            for graph, kind in ((EncoderGraph, "encoder"), (HeadGraph, "head"))
        )

    def _call(self, graph, *inputs: torch.Tensor):
        module, kind, patch_hw = graph
        start = time.perf_counter()
        with autocast(self.device, self.precision):
            out = module(*inputs)
        if (kind, patch_hw) not in self.first_calls:  # compilation happens in the first call
            self.first_calls.add((kind, patch_hw))
            self.build_s += time.perf_counter() - start
        return out

    def run_encoder(self, graph, frames: torch.Tensor) -> Features:
        return tuple(self._call(graph, frames))

    def run_head(self, graph, features: Features) -> torch.Tensor:
        return self._call(graph, *features).float()


def _apple_clang() -> bool:
    """Whether ``c++`` is Apple's clang, which has no OpenMP of its own."""
    try:
        banner = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "Apple clang" in banner


def _openmp_header_found() -> bool:
    """Whether an ``omp.h`` is where Inductor looks on macOS: $OMP_PREFIX, $CONDA_PREFIX, ``brew --prefix libomp``."""
    prefixes = [os.environ.get("OMP_PREFIX"), os.environ.get("CONDA_PREFIX")]
    brew = shutil.which("brew")
    if brew is not None:
        try:
            prefixes.append(subprocess.run([brew, "--prefix", "libomp"], capture_output=True, text=True, timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    return any(p and os.path.isfile(os.path.join(p, "include", "omp.h")) for p in prefixes)


def _available(device: torch.device) -> Optional[str]:
    if device.type == "mps" and torch_version(torch.__version__) < COMPILE_MPS_TORCH_FLOOR:
        floor = ".".join(map(str, COMPILE_MPS_TORCH_FLOOR))
        return (
            f"backend=compile on mps needs torch>={floor} (Inductor fails on this model on MPS before), "
            f"found {torch.__version__}; use backend=torch"
        )
    if device.type != "cpu":
        return None
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return (
            "backend=compile on cpu needs a C++ compiler (c++, g++ or clang++) on PATH; "
            "install one or use backend=torch"
        )
    if sys.platform == "darwin" and _apple_clang() and not _openmp_header_found():
        return (
            "backend=compile on cpu needs OpenMP, which Apple clang lacks; brew install libomp "
            "(or set OMP_PREFIX) or use backend=torch"
        )
    return None


def _make(model: VideoDepthAnything, options: CompileConfig) -> CompiledRunner:
    return CompiledRunner(model, options.mode)


register_backend(
    "compile", _make, _available, CompileConfig, help="torch.compile (inductor) of the encoder and head graphs"
)

__all__ = ["COMPILE_MODES", "CompileConfig", "CompiledRunner"]
