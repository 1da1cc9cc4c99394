"""Generated clips for tests and benchmarks: smoothly moving colour patterns with seeded noise."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Optional

import av
import numpy as np


def iter_synthetic_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> Iterator[np.ndarray]:
    """RGB ``uint8`` frames ``[height, width, 3]``, one at a time: moving sine patterns plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for t in range(count):
        r = 127 + 100 * np.sin((x + 3 * t) / 7.0)
        g = 127 + 100 * np.cos((y - 2 * t) / 5.0)
        b = 127 + 80 * np.sin((x + y + t) / 9.0)
        image = np.stack([r, g, b], axis=-1) + rng.normal(0, 8, (height, width, 3))
        yield np.clip(image, 0, 255).astype(np.uint8)


def synthetic_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """:func:`iter_synthetic_frames` as one array ``[count, height, width, 3]``."""
    return np.stack(list(iter_synthetic_frames(count, height, width, seed)))


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: Fraction | int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: Optional[dict[str, str]] = None,
) -> Path:
    """Encode RGB frames ``[H, W, 3]`` (an array ``[N, H, W, 3]`` or any iterable) into ``path`` with PyAV.

    ``options``: container options, e.g. ``{"movflags": "faststart"}`` (the mp4 index in front).
    """
    path = Path(path)
    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = None
        for index, image in enumerate(frames):
            if stream is None:
                stream = container.add_stream(codec, rate=Fraction(fps))
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = pix_fmt
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def synthetic_clip(
    path: str | Path, frames: int, height: int = 48, width: int = 64, fps: Fraction | int = 24, seed: int = 0
) -> Path:
    """An H.264 clip of :func:`iter_synthetic_frames`, encoded frame by frame (memory stays small)."""
    return write_video(path, iter_synthetic_frames(frames, height, width, seed), fps)


__all__ = ["iter_synthetic_frames", "synthetic_clip", "synthetic_frames", "write_video"]
