"""Shot cuts: where a new shot starts, so that depth is never carried from one shot into the next.

:class:`SceneCutDetector` sees the frames in order and says, for each, whether it starts a new shot. It is
causal (it never looks ahead), so the offline engine and the stream share one meaning of a cut:

* each frame is reduced to a thumbnail of at most :data:`THUMBNAIL_SIDE` pixels on its long side (Pillow's
  box ``reduce``: an area average, so fine texture and sensor noise mostly cancel);
* ``change`` = mean absolute difference of consecutive thumbnails over all pixels and channels, in ``[0, 1]``;
* ``score`` = ``change`` minus the mean ``change`` of the shot's last :data:`HISTORY` frames, the same idea as
  FFmpeg's scene score (which subtracts the previous frame's difference): steady camera or object motion raises
  ``change`` frame after frame and so cancels, a cut is a jump in it;
* a frame whose ``score`` exceeds ``threshold`` starts a new shot, and the history starts again.

:class:`ShotSplitter` cuts a stream of frames into one iterator per shot (what the offline engine runs its
windows over). Both engines time the detector as the ``scene_cuts`` stage (:func:`timed`).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
from PIL import Image

from vda.errors import ConfigError
from vda.runtime.timing import StageTimes

DEFAULT_SCENE_THRESHOLD = 0.1
THUMBNAIL_SIDE = 128
HISTORY = 8


def check_threshold(threshold: float, name: str = "infer.scene_threshold") -> None:
    """Raise :class:`~vda.errors.ConfigError` unless ``threshold`` (the setting ``name``) is inside (0, 1)."""
    if not 0.0 < threshold < 1.0:
        raise ConfigError(
            f"{name}={threshold} is outside (0, 1): it is a jump in the mean frame difference "
            f"(0 = none, 1 = black to white); the default is {DEFAULT_SCENE_THRESHOLD}"
        )


def scene_threshold(settings: Any) -> Optional[float]:
    """The cut threshold an engine should use for ``settings`` (an ``InferSettings``); None: cuts off."""
    return settings.scene_threshold if settings.scene_cuts else None


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """RGB ``uint8`` ``[H, W, 3]`` -> its box-averaged thumbnail, ``int16`` (so differences do not wrap)."""
    factor = max(1, -(-max(frame.shape[:2]) // THUMBNAIL_SIDE))
    return np.asarray(Image.fromarray(frame).reduce(factor), dtype=np.int16)


class SceneCutDetector:
    """Call it on every frame in order: True when that frame starts a new shot (never for the first frame)."""

    def __init__(self, threshold: float = DEFAULT_SCENE_THRESHOLD) -> None:
        check_threshold(threshold)
        self.threshold = threshold
        self.previous: Optional[np.ndarray] = None
        self.history: deque[float] = deque(maxlen=HISTORY)
        self.cuts = 0
        self.last_score = 0.0

    def __call__(self, frame: np.ndarray) -> bool:
        small = thumbnail(frame)
        previous, self.previous = self.previous, small
        if previous is None or previous.shape != small.shape:
            self.history.clear()
            return False
        change = float(np.abs(small - previous).mean()) / 255.0
        if not self.history:  # a shot's first difference sets its level of motion
            self.history.append(change)
            self.last_score = 0.0
            return False
        self.last_score = change - sum(self.history) / len(self.history)
        if self.last_score > self.threshold:
            self.history.clear()
            self.cuts += 1
            return True
        self.history.append(change)
        return False


def timed(detector: SceneCutDetector, times: StageTimes) -> Callable[[np.ndarray], bool]:
    """``detector`` with the seconds of each call charged to the ``scene_cuts`` stage of ``times``."""

    def is_cut(frame: np.ndarray) -> bool:
        with times.stage("scene_cuts"):
            return detector(frame)

    return is_cut


class ShotSplitter:
    """``frames`` cut where ``is_cut`` (a :class:`SceneCutDetector`, or a call around one) says a frame starts a
    new shot: iterate for one iterator of frames per shot, in order.

    Each shot must be read to its end before the next one is taken (the engine does); ``cuts`` counts the
    shot boundaries passed so far.
    """

    def __init__(self, frames: Iterable[np.ndarray], is_cut: Callable[[np.ndarray], bool]) -> None:
        self.source = iter(frames)
        self.is_cut = is_cut
        self.held: Optional[np.ndarray] = None  # the first frame of the next shot
        self.cuts = 0

    def __iter__(self) -> Iterator[Iterator[np.ndarray]]:
        yield self._shot()
        while self.held is not None:
            yield self._shot()

    def _shot(self) -> Iterator[np.ndarray]:
        if self.held is not None:
            frame, self.held = self.held, None
            yield frame
        for frame in self.source:
            if self.is_cut(frame):
                self.held = frame
                self.cuts += 1
                return
            yield frame


__all__ = [
    "DEFAULT_SCENE_THRESHOLD",
    "HISTORY",
    "SceneCutDetector",
    "ShotSplitter",
    "THUMBNAIL_SIDE",
    "check_threshold",
    "scene_threshold",
    "thumbnail",
    "timed",
]
