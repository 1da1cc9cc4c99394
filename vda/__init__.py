"""vda: inference and benchmark harness for Video Depth Anything.

Public API: :func:`build_model`, :func:`infer_video`, :func:`iter_depth` and the extension point
:func:`register_attention`, and :class:`StreamingDepth` for frames that arrive one at a time (see the README).
"""

from vda.api import infer_video, iter_depth
from vda.attention import register_attention
from vda.factory import build_model
from vda.depth.stream import StreamingDepth

__version__ = "0.1.0"

__all__ = ["StreamingDepth", "__version__", "build_model", "infer_video", "iter_depth", "register_attention"]
