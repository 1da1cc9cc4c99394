"""Benchmark scenarios. Each module's ``run(cfg, device, precision) -> JobResult`` measures one job.

:func:`run_scenario` resolves the device and precision, runs the scenario named by ``cfg.scenario.name``
and turns any exception into a result (``unavailable``, ``oom`` or ``error``), so a sweep never stops
on one job.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch

from vda.bench.result import JobResult, from_exception
from vda.bench.scenarios import equivalence, forward, pipeline
from vda.errors import ConfigError
from vda.runtime.device import resolve_device
from vda.runtime.precision import Precision, resolve_precision
from vda.tracking import environment_tags

logger = logging.getLogger(__name__)

ScenarioFn = Callable[[Any, torch.device, Precision], JobResult]

SCENARIOS: dict[str, ScenarioFn] = {
    "forward": forward.run,
    "equivalence": equivalence.run,
    "pipeline": pipeline.run,
}


def run_scenario(cfg: Any) -> JobResult:
    """Run one job described by a plain (string-valued) config; never raises for a failed measurement."""
    device = None
    resolved: dict[str, str] = {}
    threads = torch.get_num_threads()
    if cfg.job.threads:
        torch.set_num_threads(int(cfg.job.threads))
    resolved["job.threads"] = str(torch.get_num_threads())
    try:
        if cfg.scenario.name not in SCENARIOS:
            raise ConfigError(f"unknown scenario {cfg.scenario.name!r}; choose one of {', '.join(SCENARIOS)}")
        device = resolve_device(cfg.device.name)
        resolved["device.resolved"] = device.type
        precision = resolve_precision(cfg.precision.name, device)
        resolved["precision.resolved"] = precision.value
        result = SCENARIOS[cfg.scenario.name](cfg, device, precision)
    except Exception as exc:  # every failure becomes a recorded result
        logger.debug("job failed", exc_info=True)
        result = from_exception(exc)
    finally:
        torch.set_num_threads(threads)
    result.params.update(resolved)
    result.tags = environment_tags(device if device is not None else torch.device("cpu"))
    if device is None:
        result.tags["device"] = str(cfg.device.name)
    return result


__all__ = ["SCENARIOS", "run_scenario"]
