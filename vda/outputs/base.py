"""What every output writer is: :class:`OutputWriter`, and the :class:`OutputContext` it is given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from vda.outputs.writers import DepthStore
from vda.video.reader import VideoInfo


@dataclass
class OutputContext:
    """What a writer may need: the video, the output options, whether depth is metric, whether the frames
    come from a stream (whose end, and so whose global depth range, is not known in advance)."""

    info: VideoInfo
    options: Any  # an OutputConfig
    metric: bool
    stream: bool = False


class OutputWriter:
    """Writes one output to ``path`` (its staged temporary name) and, for formats with a sidecar, ``sidecar``.

    ``progress_unit``: what :meth:`finish` reports progress in ("frame", "B", or None: nothing to report);
    ``background``: :meth:`finish` may run in a thread beside the other writers (plain file copies);
    ``live``: the writer takes the final depth maps as they come (:meth:`add_depth`, first pass) instead of
    reading them back from the store after the last window.
    """

    progress_unit: Optional[str] = "frame"
    background = False
    live = False

    def __init__(self, path: Path, context: OutputContext, sidecar: Optional[Path] = None) -> None:
        self.path = path
        self.context = context
        self.sidecar = sidecar

    def add_frame(self, frame: np.ndarray) -> None:
        """One decoded RGB frame ``[H, W, 3]``, in order (only formats with ``takes_frames``)."""

    def add_depth(self, maps: np.ndarray) -> None:
        """Final depth maps float32 ``[k, H, W]``, in order (only ``live`` writers)."""

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        """Write the output from the complete depth, calling ``on_progress(n)`` as it goes."""

    def abort(self) -> None:
        """Release what the writer holds; the staged file is deleted by the caller."""


__all__ = ["OutputContext", "OutputWriter"]
