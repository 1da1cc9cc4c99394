"""The registry of runtime backends: one record per backend, each in its own module of this package.

A record holds the backend's factory, its options (a dataclass: the one home of their defaults, stored as the
backend's Hydra group option), why it cannot run on a device, and what it can run: whole 32-frame windows only
(exported graphs) and stepping one frame at a time (stream mode). ``create(name, model, **options)`` checks
that the backend can run on the model's device and that the model's attention and precision suit it, then
returns a runner (:mod:`vda.backends.runners`). Rule for attention: it is a torch-side choice; ``torch`` and
``compile`` run whatever the model was built with, the graph backends run the exported math formulation and
accept a model built with ``sdpa`` or ``math`` (the same numbers), refusing ``xformers``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from vda.errors import BackendUnavailableError, ConfigError
from vda.model.video_depth_anything import VideoDepthAnything
from vda.registry import Availability, Registry

GRAPH_ATTENTION = ("sdpa", "math")  # what a model must be built with to run as the exported graphs


@dataclass
class BackendConfig:
    """The options every backend has (its name); a backend with options subclasses this in its own module."""

    name: str = "torch"


@dataclass(frozen=True)
class Backend:
    """A runtime: ``factory(model, options) -> runner`` with ``options`` an instance of ``schema``."""

    factory: Callable[[VideoDepthAnything, Any], Any]
    schema: type = BackendConfig
    # The head runs whole 32-frame windows only (exported graphs): a model call takes exactly that many frames.
    whole_windows: bool = False
    # Can step the network one frame at a time with its temporal state (stream mode).
    steps_frames: bool = False
    # Its runner allocates device memory outside torch's allocator (ONNX Runtime, OpenVINO).
    foreign_memory: bool = False


BACKENDS: Registry[Backend] = Registry("backend")


def register_backend(
    name: str,
    factory: Callable[[VideoDepthAnything, Any], Any],
    available: Optional[Availability] = None,
    schema: type = BackendConfig,
    help: str = "",
    replace: bool = False,
    whole_windows: bool = False,
    steps_frames: bool = False,
    foreign_memory: bool = False,
) -> Backend:
    """Add a runtime: ``factory(model, options) -> runner``; ``available(device)`` says why it cannot run."""
    backend = Backend(factory, schema, whole_windows, steps_frames, foreign_memory)
    return BACKENDS.register(name, backend, available, help, replace)


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)


def backend_status(name: str, device: torch.device | str) -> Optional[str]:
    """None when backend ``name`` can run on ``device``, else the one-line reason."""
    return BACKENDS.record(name).unavailable_reason(torch.device(device))


def check_backend(name: str, device: torch.device | str) -> None:
    """Raise before any model is built when backend ``name`` cannot run on ``device`` (ConfigError if unknown)."""
    reason = backend_status(name, device)
    if reason is not None:
        raise BackendUnavailableError(reason)


def options_for(name: str, **options) -> Any:
    """The options record of backend ``name`` from keyword values (ConfigError for an option it lacks)."""
    schema = get_backend(name).schema
    fields = [f.name for f in dataclasses.fields(schema) if f.name != "name"]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"backend={name} has no option {', '.join(unknown)}; its options: {', '.join(fields) or 'none'}")
    return schema(name=name, **options)


def run_on(options: Any, model: VideoDepthAnything):
    """``model`` behind the backend ``options.name`` configured by ``options`` (its record's dataclass)."""
    check_backend(options.name, model.device)
    return get_backend(options.name).factory(model, options)


def create(name: str, model: VideoDepthAnything, **options):
    """A runner of ``model`` (built by :func:`vda.build_model`) on backend ``name`` with its options.

    Raises :class:`ConfigError` for an unknown backend or option, :class:`BackendUnavailableError` when the
    backend cannot run here or not with the model's attention/precision.
    """
    return run_on(options_for(name, **options), model)


def missing_packages(backend: str, extra: str, modules: tuple[str, ...]) -> Optional[str]:
    """Why ``backend`` cannot run when one of ``modules`` is not installed (``pip install -e .[extra]``)."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (
        f"backend={backend} needs the {', '.join(absent)} package{'s' if len(absent) > 1 else ''}, not installed; "
        f'pip install -e ".[{extra}]" or use backend={BackendConfig.name}'
    )


def check_graph_model(backend: str, model: VideoDepthAnything) -> None:
    """Refuse a model whose attention the exported graphs cannot reproduce."""
    if model.attention_name not in GRAPH_ATTENTION:
        raise BackendUnavailableError(
            f"backend={backend} runs the exported graph with math attention; attention={model.attention_name} "
            f"applies to backend=torch|compile only; use attention=sdpa or attention=math"
        )


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendConfig",
    "backend_status",
    "check_backend",
    "check_graph_model",
    "create",
    "get_backend",
    "missing_packages",
    "options_for",
    "register_backend",
    "run_on",
]
