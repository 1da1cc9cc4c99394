"""The depth algorithms: the offline windowed engine (with its encoder-feature cache), the stream, window
planning, alignment, preprocessing, shot-cut detection, the modes that pick one, and the run of a video into its
outputs."""

from vda.depth.align import WindowAligner, scale_shift
from vda.depth.engine import EngineStats, WindowedDepth
from vda.depth.preprocess import Preprocessor, network_size
from vda.depth.windows import WindowPlan, padding, plan_windows, window_starts

__all__ = [
    "EngineStats",
    "Preprocessor",
    "WindowAligner",
    "WindowPlan",
    "WindowedDepth",
    "network_size",
    "padding",
    "plan_windows",
    "scale_shift",
    "window_starts",
]
