"""Window planning of the offline algorithm: padding, window starts and what each window slot holds.

The video is cut into windows of :data:`WINDOW` frames that start every :data:`STRIDE` frames. The frame
list is padded with copies of the last frame so the last window is full. From the second window on, the
first :data:`OVERLAP` slots are replaced by the previous window's input at :data:`KEYFRAMES`, so slot 0 is
always video frame 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

WINDOW = 32
OVERLAP = 10
STRIDE = WINDOW - OVERLAP  # 22
KEYFRAMES = (0, 12, 24, 25, 26, 27, 28, 29, 30, 31)
INTERP = 8  # overlapping maps blended between consecutive windows
ALIGN_SLOTS = OVERLAP - INTERP  # 2: slots matched onto the references
REFERENCE_SLOTS = KEYFRAMES[:ALIGN_SLOTS]  # (0, 12)


def padding(length: int) -> int:
    """Copies of the last frame appended to a ``length``-frame video."""
    if length < 1:
        raise ValueError(f"a video needs at least one frame, got {length}")
    return (STRIDE - length % STRIDE) % STRIDE + OVERLAP


def window_starts(length: int) -> list[int]:
    """Padded-frame index at which each window starts: 0, 22, 44, ... while below ``length``."""
    padding(length)
    return list(range(0, length, STRIDE))


def window_slots(start: int, previous: Optional[Sequence[int]]) -> list[int]:
    """Padded-frame index held by each of the 32 slots of the window starting at ``start``.

    ``previous`` is the slot list of the window before (``None`` for the first window).
    """
    slots = list(range(start, start + WINDOW))
    if previous is not None:
        slots[:OVERLAP] = [previous[k] for k in KEYFRAMES]
    return slots


def used_slots(start: int, length: Optional[int]) -> int:
    """How many leading slots of the window at ``start`` have depth the algorithm uses, for a ``length``-frame
    video (None: not known yet, so not the last window).

    Every slot of a window another follows. In the last one, slot ``j >= ALIGN_SLOTS`` holds frame ``start + j``
    (the layout :func:`window_slots` gives) and is used only for a frame of the video; the first ``ALIGN_SLOTS``
    are always used (they fit the window's scale and shift).
    """
    if length is None or start + STRIDE < length:
        return WINDOW
    return min(WINDOW, max(ALIGN_SLOTS, length - start))


@dataclass(frozen=True)
class WindowPlan:
    """Every window of a ``length``-frame video, as indices of decoded frames (padding copies clamped)."""

    length: int
    padding: int
    windows: tuple[tuple[int, ...], ...]

    @property
    def padded_length(self) -> int:
        return self.length + self.padding

    @property
    def aligned_length(self) -> int:
        """Depth maps the alignment produces before keeping the first ``length``."""
        return WINDOW + STRIDE * (len(self.windows) - 1)


def plan_windows(length: int) -> WindowPlan:
    """The whole plan for a video of ``length`` frames."""
    windows = []
    previous = None
    for start in window_starts(length):
        previous = window_slots(start, previous)
        windows.append(tuple(min(index, length - 1) for index in previous))
    return WindowPlan(length=length, padding=padding(length), windows=tuple(windows))


__all__ = [
    "ALIGN_SLOTS",
    "INTERP",
    "KEYFRAMES",
    "OVERLAP",
    "REFERENCE_SLOTS",
    "STRIDE",
    "WINDOW",
    "WindowPlan",
    "padding",
    "plan_windows",
    "used_slots",
    "window_slots",
    "window_starts",
]
