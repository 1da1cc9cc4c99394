"""Video inference: the offline windowed algorithm, streamed, with an encoder-feature cache."""

from vda.pipeline.align import WindowAligner, scale_shift
from vda.pipeline.engine import EngineStats, WindowedDepth
from vda.pipeline.preprocess import Preprocessor, network_size
from vda.pipeline.windows import WindowPlan, padding, plan_windows, window_starts

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
