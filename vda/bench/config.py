"""Top-level schema of ``run_bench.py`` (``base_bench`` in Hydra's ConfigStore).

The ``scenario`` group is generated from :data:`~vda.bench.scenarios.SCENARIOS`: each record's dataclass is
the one home of that scenario's defaults, so a typo (``scenario.frame=8``) or a bad value fails when the
config is composed, before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from vda.attention import ATTENTION
from vda.backends import BACKENDS
from vda.bench.scenarios import SCENARIOS
from vda.config import MlflowConfig, ModelConfig, RunConfig, store_choice_groups, store_defaults

DEFAULT_SCENARIO = "forward"  # a bare python run_bench.py


@dataclass
class JobConfig:
    # Run the measurement in a fresh Python process, so that one job's peak memory never leaks into another.
    isolate: bool = True
    # Seconds before an isolated job is stopped and recorded as an error; 0: no limit.
    timeout_s: float = 0.0
    # CPU threads torch may use in the job (torch.set_num_threads); null: torch's default (one per core).
    threads: Optional[int] = None


@dataclass
class BenchConfig(RunConfig):
    scenario: Any = MISSING
    # Speed and equivalence do not depend on trained values: seeded random weights by default.
    model: ModelConfig = field(default_factory=lambda: ModelConfig(checkpoint="random"))
    mlflow: MlflowConfig = field(default_factory=lambda: MlflowConfig(experiment="vda-bench"))
    job: JobConfig = field(default_factory=JobConfig)


def register_configs() -> None:
    cs = ConfigStore.instance()
    store_choice_groups(cs)
    cs.store(name="base_bench", node=BenchConfig)
    store_defaults(cs, "bench_defaults", "base_bench", BenchConfig(), scenario=DEFAULT_SCENARIO)
    for record in SCENARIOS.records():
        if record.value.defaults:  # the option also sets other groups' defaults, so it lives at the top level
            node = {"scenario": OmegaConf.structured(record.value.schema), **record.value.defaults}
            cs.store(group="scenario", name=record.name, node=node, package="_global_")
        else:
            cs.store(group="scenario", name=record.name, node=record.value.schema)


def bench_config(data: dict | DictConfig) -> BenchConfig:
    """A typed :class:`BenchConfig` from plain values (an isolated job's saved config)."""
    data = OmegaConf.create(data) if isinstance(data, dict) else data
    cfg = OmegaConf.structured(BenchConfig)
    # each choice typed by its record's dataclass, as Hydra's group options are
    for key, registry in (("scenario", SCENARIOS), ("attention", ATTENTION), ("backend", BACKENDS)):
        if key in data:
            cfg[key] = OmegaConf.structured(registry.get(data[key].name).schema)
    return OmegaConf.to_object(OmegaConf.merge(cfg, data))


__all__ = ["BenchConfig", "JobConfig", "bench_config", "register_configs"]
