"""Backend ``compile``: ``torch.compile`` (inductor) of the encoder and head graphs, under the model's autocast."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Optional

import torch

from vda.backends.base import BackendConfig, register_backend
from vda.backends.graphs import EncoderGraph, HeadGraph
from vda.backends.runners import GraphRunner
from vda.errors import ConfigError
from vda.model.video_depth_anything import Features, VideoDepthAnything
from vda.runtime.precision import autocast

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


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


def _available(device: torch.device) -> Optional[str]:
    if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return (
            "backend=compile on cpu needs a C++ compiler (c++, g++ or clang++) on PATH; "
            "install one or use backend=torch"
        )
    return None


def _make(model: VideoDepthAnything, options: CompileConfig) -> CompiledRunner:
    return CompiledRunner(model, options.mode)


register_backend(
    "compile", _make, _available, CompileConfig, help="torch.compile (inductor) of the encoder and head graphs"
)

__all__ = ["COMPILE_MODES", "CompileConfig", "CompiledRunner"]
