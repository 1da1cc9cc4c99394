"""vda: inference and benchmark harness for Video Depth Anything.

Public API: :func:`build_model`, :func:`infer_video`, :func:`iter_depth` and the extension point
:func:`register_attention`, :class:`StreamingDepth` for frames that arrive one at a time, and
:func:`read_depth_video` for the 16-bit depth video output (see the README and docs/outputs.md).

The names are loaded on first use: importing a submodule that needs neither torch nor the model (the process that
holds a tracked run, :mod:`vda.tracking.worker`) does not import them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vda.api import infer_video, iter_depth
    from vda.attention import register_attention
    from vda.depth.stream import StreamingDepth
    from vda.factory import build_model
    from vda.outputs.depth_video import read_depth_video

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "StreamingDepth": "vda.depth.stream",
    "build_model": "vda.factory",
    "infer_video": "vda.api",
    "iter_depth": "vda.api",
    "read_depth_video": "vda.outputs.depth_video",
    "register_attention": "vda.attention",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'vda' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = ["StreamingDepth", "__version__", "build_model", "infer_video", "iter_depth", "read_depth_video", "register_attention"]
