"""Where the user's paths point: the directory a command was started from, and paths relative to it.

Hydra is imported where it is asked: the process that holds a tracked run (:mod:`vda.tracking.worker`) imports this
module through the store and runs without Hydra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def launch_dir() -> Path:
    """Directory the command was started from (Hydra may have changed into its output folder)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.cwd)
    return Path.cwd()


def resolve_path(value: Any) -> Path:
    """``value`` with ``~`` expanded; a relative path is taken from the launch directory (not Hydra's run dir)."""
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else launch_dir() / path


__all__ = ["launch_dir", "resolve_path"]
