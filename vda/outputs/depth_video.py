"""``output.depth_video``: the depth as a lossless 16-bit video, ``{stem}_depth16.mkv``, and
:func:`read_depth_video` to get float32 depth back.

FFV1 (FFmpeg's lossless intra codec) in Matroska, one ``gray16le`` plane per frame: a depth map ``d`` is stored
as ``round((d - min) / (max - min) * 65535)``, so reading it back is exact to half a 16-bit step of the range.
``min``, ``max`` and the formula are in the container's metadata (``VDA_DEPTH_MIN``, ``VDA_DEPTH_MAX``, ...) and
in the sidecar ``{stem}_depth16.json``.

The range:

* ``mode=offline``: the global min and max of the depth, known after the last window, so the video is written
  in the second pass like the preview;
* ``mode=stream`` (whatever the source: a file, images or a live input): the range is fixed from the first
  :data:`STREAM_WARMUP_FRAMES` frames, widened by :data:`STREAM_MARGIN` of their span on each side (never below
  0 for non-negative depth), and the video is written as the depth comes; values outside the range are clipped
  to it, and the fraction of clipped pixels is in the sidecar (and logged as a warning).
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Optional

import av
import numpy as np

from vda.errors import VideoError
from vda.outputs.base import OutputContext, OutputWriter
from vda.outputs.writers import DepthStore

logger = logging.getLogger(__name__)

CODEC = "ffv1"
PIX_FMT = "gray16le"
LEVELS = 65535
STREAM_WARMUP_FRAMES = 8
STREAM_MARGIN = 0.5
FORMULA = "depth = min + value / 65535 * (max - min)"
CODEC_OPTIONS = {"level": "3", "slicecrc": "1", "context": "1"}
MIN_KEY, MAX_KEY, UNIT_KEY, FORMULA_KEY = "VDA_DEPTH_MIN", "VDA_DEPTH_MAX", "VDA_DEPTH_UNIT", "VDA_DEPTH_FORMULA"


def quantize(depth: np.ndarray, low: float, high: float) -> np.ndarray:
    """Depth -> ``uint16`` over ``low .. high`` (clipped to it; a constant range gives 0)."""
    scale = LEVELS / (high - low) if high > low else 0.0
    return np.clip(np.rint((depth - low) * scale), 0, LEVELS).astype(np.uint16)


def dequantize(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low + values.astype(np.float64) * ((high - low) / LEVELS)).astype(np.float32)


class DepthVideoEncoder:
    """An FFV1 ``gray16le`` Matroska file; the range goes into the container metadata before the first frame."""

    def __init__(self, path: Path, width: int, height: int, fps: Fraction) -> None:
        self.path, self.width, self.height, self.fps = path, width, height, fps
        self.container: Optional[av.container.OutputContainer] = None
        self.stream = None
        self.low = self.high = 0.0

    def open(self, low: float, high: float, unit: str) -> None:
        self.low, self.high = low, high
        self.container = av.open(str(self.path), mode="w", format="matroska")
        self.container.metadata.update({MIN_KEY: repr(low), MAX_KEY: repr(high), UNIT_KEY: unit, FORMULA_KEY: FORMULA})
        self.stream = self.container.add_stream(CODEC, rate=self.fps, options=dict(CODEC_OPTIONS))
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, PIX_FMT

    def write(self, values: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(values, format=PIX_FMT)
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()
        self.container = None

    def abort(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None


class DepthVideoWriter(OutputWriter):
    """Offline: the second pass over the store with its global range. Stream: live, with the warm-up range."""

    def __init__(self, path: Path, context: OutputContext, sidecar: Optional[Path] = None) -> None:
        super().__init__(path, context, sidecar)
        info = context.info
        self.encoder = DepthVideoEncoder(path, info.width, info.height, info.fps)
        self.unit = "metres" if context.metric else "relative (inverse depth, arbitrary scale)"
        self.live = context.stream
        self.progress_unit = None if self.live else "frame"
        self.warmup: list[np.ndarray] = []
        self.frames = 0
        self.clipped = 0

    def _start(self, low: float, high: float) -> None:
        self.encoder.open(low, high, self.unit)

    def _encode(self, depth: np.ndarray) -> None:
        if self.live:
            self.clipped += int(np.count_nonzero((depth < self.encoder.low) | (depth > self.encoder.high)))
        self.encoder.write(quantize(depth, self.encoder.low, self.encoder.high))
        self.frames += 1

    def _start_from_warmup(self) -> None:
        low = min((float(d.min()) for d in self.warmup), default=0.0)  # no frame at all: an empty video
        high = max((float(d.max()) for d in self.warmup), default=0.0)
        margin = STREAM_MARGIN * (high - low)
        self._start(max(low - margin, 0.0) if low >= 0 else low - margin, high + margin)
        for depth in self.warmup:
            self._encode(depth)
        self.warmup = []

    def add_depth(self, maps: np.ndarray) -> None:
        for depth in maps:
            if self.encoder.container is not None:
                self._encode(depth)
                continue
            self.warmup.append(depth.copy())
            if len(self.warmup) == STREAM_WARMUP_FRAMES:
                self._start_from_warmup()

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        if self.live:
            if self.encoder.container is None:  # the stream ended during the warm-up
                self._start_from_warmup()
        else:
            self._start(store.min, store.max)
            for chunk in store.chunks():
                for depth in chunk:
                    self._encode(depth)
                on_progress(len(chunk))
        self.encoder.close()
        pixels = self.frames * store.height * store.width
        clipped = self.clipped / pixels if pixels else 0.0
        if clipped > 0:
            logger.warning(
                "%s: %.3g%% of the depth fell outside the range fixed from the first %d frames and was clipped",
                self.path.name, 100 * clipped, STREAM_WARMUP_FRAMES,
            )
        meta = {
            "codec": CODEC,
            "pix_fmt": PIX_FMT,
            "min": self.encoder.low,
            "max": self.encoder.high,
            "formula": FORMULA,
            "unit": self.unit,
            "frames": self.frames,
            "fps": str(self.context.info.fps),
            "range": f"first {STREAM_WARMUP_FRAMES} frames +/- {STREAM_MARGIN:g} of their span, clipped" if self.live else "global",
            "clipped_fraction": clipped,
        }
        self.sidecar.write_text(json.dumps(meta, indent=2) + "\n")

    def abort(self) -> None:
        self.encoder.abort()


def _range(container: av.container.InputContainer, path: Path) -> tuple[float, float]:
    meta = {key.upper(): value for key, value in container.metadata.items()}
    if MIN_KEY in meta and MAX_KEY in meta:
        return float(meta[MIN_KEY]), float(meta[MAX_KEY])
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        values = json.loads(sidecar.read_text())
        return float(values["min"]), float(values["max"])
    raise VideoError(f"{path} carries no depth range ({MIN_KEY}/{MAX_KEY} metadata) and has no {sidecar.name} beside it")


def iter_depth_video(path: str | Path) -> Iterator[np.ndarray]:
    """The maps of a ``{stem}_depth16.mkv`` one at a time, float32 ``[H, W]``."""
    path = Path(path)
    try:
        container = av.open(str(path))
    except (OSError, av.error.FFmpegError) as exc:
        raise VideoError(f"cannot open depth video {path}: {exc}") from None
    with container:
        low, high = _range(container, path)
        for frame in container.decode(video=0):
            yield dequantize(frame.to_ndarray(format=PIX_FMT), low, high)


def read_depth_video(path: str | Path) -> np.ndarray:
    """Float32 depth ``[N, H, W]`` of a ``{stem}_depth16.mkv`` written by ``output.depth_video=true``."""
    maps = list(iter_depth_video(path))
    if not maps:
        raise VideoError(f"{path} holds no frame")
    return np.stack(maps)


__all__ = [
    "DepthVideoWriter",
    "STREAM_MARGIN",
    "STREAM_WARMUP_FRAMES",
    "dequantize",
    "iter_depth_video",
    "quantize",
    "read_depth_video",
]
