"""``equivalence``: the same input and weights through each attention implementation, at the chosen precision and
on the chosen backend, against the reference: torch ``math`` in fp32.

The job's result holds one child per implementation (recorded as nested MLflow runs with the ``equiv_*``
metrics); an implementation that cannot run here is a child with status ``unavailable`` and the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from vda.attention import ATTENTION, attention_options
from vda.backends import BackendConfig, run_on
from vda.bench.agreement import compare
from vda.bench.result import JobResult, Status, from_exception
from vda.bench.scenarios.base import SCENARIOS, Scenario, WindowScenarioConfig
from vda.bench.scenarios.common import build_for, random_window, shape_params, window_shape
from vda.model import VideoDepthAnything
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import Precision

REFERENCE = ("math", Precision.fp32)


@dataclass
class EquivalenceScenarioConfig(WindowScenarioConfig):
    """Depth of each implementation (at the chosen precision) against ``math`` in fp32, same weights and input."""

    name: str = "equivalence"
    # Every registered attention implementation by default.
    implementations: list[str] = field(default_factory=lambda: ATTENTION.names())


def _against_reference(
    cfg: Any, model: VideoDepthAnything, name: str, x: torch.Tensor, reference: torch.Tensor
) -> JobResult:
    backend = "" if cfg.backend.name == BackendConfig.name else f" on {cfg.backend.name}"  # the default unnamed
    label = f"{name} {model.precision.value}{backend} vs {REFERENCE[0]} {REFERENCE[1].value}"
    options = cfg.attention if name == cfg.attention.name else name  # the configured options for its own choice
    params = {"attention.name": name}
    try:
        options = attention_options(options)
        params = {f"attention.{key}": value for key, value in dataclasses.asdict(options).items()}
        model.set_attention(options)
        depth = run_on(cfg.backend, model)(x)
    except Exception as exc:  # recorded as the child's status; the other implementations still run
        failed = from_exception(exc)
        failed.name, failed.params = label, params
        return failed
    return JobResult(name=label, metrics=compare(depth, reference).metrics(), params=params)


def run(cfg: Any, device: torch.device, precision: Precision) -> JobResult:
    scenario = cfg.scenario
    shape = window_shape(cfg, device)
    eager = dataclasses.replace(cfg, backend=BackendConfig())  # the reference network itself
    x = random_window(shape, int(scenario.input_seed), device)
    with torch.inference_mode(), MemoryTracker(device) as memory:
        reference_model = build_for(eager, device, REFERENCE[1], attention=REFERENCE[0])
        reference = reference_model(x).cpu()
        if precision is REFERENCE[1]:
            model = reference_model
        else:
            model = build_for(eager, device, precision, attention=REFERENCE[0])
            model.load_state_dict(reference_model.state_dict())
        children = [_against_reference(cfg, model, name, x, reference) for name in scenario.implementations]
    summary = ", ".join(f"{child.params['attention.name']}: {child.status.value}" for child in children)
    return JobResult(
        status=Status.ok,
        reason=summary,
        metrics={"peak_memory_mib": memory.peak_mb, **memory.details},
        params=shape_params(shape),
        children=children,
    )


SCENARIOS.register(
    "equivalence",
    Scenario(EquivalenceScenarioConfig, run, timed=False),
    help="depth of each attention implementation vs math fp32 (nested run per implementation)",
)
