"""Runtime backends behind one choice, one module each: torch (eager), compile, onnxruntime, openvino.

    runner = vda.backends.create("openvino", build_model("vits", checkpoint=...), device="CPU")
    WindowedDepth(runner, input_size=518)   # the engine takes a runner like a model

A backend is one module of this package that registers its record (:func:`register_backend`) with its
options dataclass; importing the package imports every module (:func:`discover`), so a new module is a new
choice, with its Hydra group option, and nothing else to edit but its extra in ``pyproject.toml``.
"""

import importlib
import pkgutil

from vda.backends.base import (
    BACKENDS,
    Backend,
    BackendConfig,
    backend_status,
    check_backend,
    create,
    get_backend,
    options_for,
    register_backend,
    run_on,
)
from vda.backends.runners import GraphRunner, Runner

SUPPORT = ("base", "cache", "export", "graphs", "runners")  # the modules that are not backends


def discover() -> list[str]:
    """Import every backend module of this package (those already imported are kept); returns their names."""
    names = sorted((m.name for m in pkgutil.iter_modules(__path__) if m.name not in SUPPORT), key=lambda n: n != BackendConfig.name)
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return names


discover()

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendConfig",
    "GraphRunner",
    "Runner",
    "backend_status",
    "check_backend",
    "create",
    "discover",
    "get_backend",
    "options_for",
    "register_backend",
    "run_on",
]
