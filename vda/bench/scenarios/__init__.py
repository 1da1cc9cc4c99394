"""Benchmark scenarios: one module each, registered in :data:`SCENARIOS` (see :mod:`vda.bench.scenarios.base`).

:func:`run_scenario` resolves the device and precision, runs the scenario named by ``cfg.scenario.name``
and turns any exception into a result (``unavailable``, ``oom`` or ``error``), so a sweep never stops
on one job.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

import torch

from vda.bench.result import JobResult, from_exception
from vda.bench.scenarios.base import SCENARIOS, Scenario
from vda.runtime.device import facts, resolve_device
from vda.runtime.precision import resolve_precision
from vda.tracking.environment import environment_tags

logger = logging.getLogger(__name__)

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "common"):
        importlib.import_module(f"{__name__}.{_module.name}")


def run_scenario(cfg: Any) -> JobResult:
    """Run one job described by a typed :class:`~vda.bench.config.BenchConfig`; never raises for a failed measurement."""
    device = None
    resolved: dict[str, str] = {}
    threads = torch.get_num_threads()
    if cfg.job.threads:
        torch.set_num_threads(int(cfg.job.threads))
    resolved["job.threads"] = str(torch.get_num_threads())
    try:
        scenario = SCENARIOS.get(cfg.scenario.name)
        device = resolve_device(cfg.device.name)
        resolved["device.resolved"] = str(device)
        precision = resolve_precision(cfg.precision.name, device)
        resolved["precision.resolved"] = precision.value
        resolved["precision.fp32_math"] = facts(device).fp32_math_label
        result = scenario.run(cfg, device, precision)
    except Exception as exc:  # every failure becomes a recorded result
        logger.debug("job failed", exc_info=True)
        result = from_exception(exc)
    finally:
        torch.set_num_threads(threads)
    compared = [child.params.get("attention.name", child.name) for child in result.children]
    resolved["attention.resolved"] = ",".join(compared) if compared else str(cfg.attention.name)
    resolved["backend.resolved"] = str(cfg.backend.name)
    result.params.update(resolved)
    result.tags = {**environment_tags(device if device is not None else torch.device("cpu")), **result.tags}
    if device is None:
        result.tags["device"] = str(cfg.device.name)
    return result


__all__ = ["SCENARIOS", "Scenario", "run_scenario"]
