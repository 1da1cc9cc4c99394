"""Top-level schema of ``run_bench.py`` (``base_bench`` in Hydra's ConfigStore) and of its scenarios.

Each scenario yaml in ``conf/scenario/`` extends one of the ``scenario/base_*`` schemas below, so a typo
(``scenario.frame=8``) or a bad value fails when the config is composed, before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from vda.config import AttentionConfig, DeviceConfig, EncoderConfig, MlflowConfig, ModelConfig, PrecisionConfig


@dataclass
class ScenarioConfig:
    name: str = MISSING


@dataclass
class WindowScenarioConfig(ScenarioConfig):
    """A scenario on one input window [batch, frames, 3, height, width]; null sizes take the device default.

    Defaults: 32 frames at 518x518 on cuda and mps (the published reference workload); 8 frames at
    196x196 on cpu, so that a bare ``python run_bench.py`` stays short on a laptop.
    """

    batch: int = 1
    frames: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    # Seed of the random input frames.
    input_seed: int = 0


@dataclass
class ForwardScenarioConfig(WindowScenarioConfig):
    """Latency, throughput and peak memory of ``model(x)`` on one window."""

    name: str = "forward"
    # Untimed calls before measuring.
    warmup: int = 2
    # Timed calls continue until both minimums are reached (max_runs > 0 caps the count).
    min_runs: int = 10
    min_time_s: float = 5.0
    max_runs: int = 0


@dataclass
class EquivalenceScenarioConfig(WindowScenarioConfig):
    """Depth of each implementation (at the chosen precision) against ``math`` in fp32, same weights and input."""

    name: str = "equivalence"
    implementations: list[str] = field(default_factory=lambda: ["sdpa", "xformers", "math"])


@dataclass
class PipelineScenarioConfig(ScenarioConfig):
    """End-to-end frames/s of the video inference (``run_infer.py``'s pipeline) with the per-stage split."""

    name: str = "pipeline"
    # Video to process (relative to the launch directory); null: a generated clip of the size below.
    input: Optional[str] = None
    clip_frames: int = 40
    clip_height: int = 240
    clip_width: int = 320
    clip_fps: int = 24
    # Network input size; null: 518 on cuda/mps (the reference), 196 on cpu.
    input_size: Optional[int] = None
    max_res: int = 1280
    max_len: int = -1
    target_fps: float = -1.0
    feature_cache: bool = True
    # Outputs written as run_infer.py does (timed as the "write" stage), deleted after the job.
    npz: bool = True
    vis: bool = True
    # Measured passes over the video after the first (cold) pass, which gives first_call_s.
    repeats: int = 1


@dataclass
class JobConfig:
    # Run the measurement in a fresh Python process, so that one job's peak memory never leaks into another.
    isolate: bool = True
    # Seconds before an isolated job is stopped and recorded as an error; 0: no limit.
    timeout_s: float = 0.0
    # CPU threads torch may use in the job (torch.set_num_threads); null: torch's default (one per core).
    threads: Optional[int] = None


@dataclass
class BenchConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    scenario: Any = MISSING
    # Speed and equivalence do not depend on trained values: seeded random weights by default.
    model: ModelConfig = field(default_factory=lambda: ModelConfig(checkpoint="random"))
    mlflow: MlflowConfig = field(default_factory=lambda: MlflowConfig(experiment="vda-bench"))
    job: JobConfig = field(default_factory=JobConfig)


SCENARIO_SCHEMAS: dict[str, type] = {
    "forward": ForwardScenarioConfig,
    "equivalence": EquivalenceScenarioConfig,
    "pipeline": PipelineScenarioConfig,
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_bench", node=BenchConfig)
    for name, schema in SCENARIO_SCHEMAS.items():
        cs.store(group="scenario", name=f"base_{name}", node=schema)


__all__ = [
    "BenchConfig",
    "EquivalenceScenarioConfig",
    "ForwardScenarioConfig",
    "JobConfig",
    "PipelineScenarioConfig",
    "SCENARIO_SCHEMAS",
    "ScenarioConfig",
    "WindowScenarioConfig",
    "register_configs",
]
