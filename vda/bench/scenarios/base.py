"""The scenario registry and the schemas every scenario extends.

A scenario is one module in this package holding its config dataclass (the one home of its defaults), a
``run(cfg, runtime) -> JobResult`` function and one :data:`SCENARIOS` record; the package imports every module,
the ``scenario`` Hydra group is generated from the registry, and the report places a job by its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from omegaconf import MISSING

from vda.depth.settings import InferSettings
from vda.registry import Registry


@dataclass
class ScenarioConfig:
    name: str = MISSING


@dataclass
class WindowScenarioConfig(ScenarioConfig):
    """A scenario on one input window [batch, frames, 3, height, width]; null sizes take the device default.

    Defaults (from the device's record): 32 frames at 518x518 on cuda and mps (the published reference
    workload); 8 frames at 196x196 on cpu, so that a bare ``python run_bench.py`` stays short on a laptop.
    """

    batch: int = 1
    frames: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    # Seed of the random input frames.
    input_seed: int = 0


@dataclass
class ClipScenarioConfig(ScenarioConfig):
    """A scenario over a video: ``input``, or a generated clip of ``clip_frames`` at ``clip_height`` x ``clip_width``."""

    # Video (relative to the launch directory); null: a generated clip of the size below.
    input: Optional[str] = None
    clip_frames: int = 40
    clip_height: int = 240
    clip_width: int = 320
    clip_fps: int = 24
    # Network input size; null: the device's default (518 on cuda/mps, the reference; 196 on cpu).
    input_size: Optional[int] = None
    max_res: int = InferSettings.max_res


@dataclass(frozen=True)
class Scenario:
    schema: type
    run: Callable[..., Any]  # run(cfg: BenchConfig, device, precision) -> JobResult
    # Its job runs are timed (latency/throughput table and charts); otherwise their children are the result.
    timed: bool = True
    # Values this scenario gives other config groups by default (e.g. {"model": {"checkpoint": "auto"}});
    # the command line still overrides them.
    defaults: dict[str, Any] = field(default_factory=dict)


SCENARIOS: Registry[Scenario] = Registry("scenario")

__all__ = ["SCENARIOS", "ClipScenarioConfig", "Scenario", "ScenarioConfig", "WindowScenarioConfig"]
