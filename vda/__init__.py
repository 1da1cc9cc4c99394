"""vda: inference and benchmark harness for Video Depth Anything.

Public API: :func:`build_model`, :func:`infer_video`, :func:`iter_depth` and the extension point
:func:`register_attention`, :class:`StreamingDepth` for frames that arrive one at a time, and
:func:`read_depth_video` for the 16-bit depth video output (see the README and docs/outputs.md).
"""

from vda.api import infer_video, iter_depth
from vda.attention import register_attention
from vda.factory import build_model
from vda.depth.stream import StreamingDepth
from vda.outputs.depth_video import read_depth_video

__version__ = "0.1.0"

__all__ = ["StreamingDepth", "__version__", "build_model", "infer_video", "iter_depth", "read_depth_video", "register_attention"]
