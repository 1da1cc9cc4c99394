"""Lazy video decoding with PyAV: ``max_res`` downscale, ``target_fps`` by frame stride, ``max_len``.

:func:`probe` opens the file, checks that it holds a decodable video stream and works out the decoded
frame size and the exact (rational) output frame rate without reading more than the first frame.
:class:`VideoReader` then yields RGB ``uint8`` frames ``[H, W, 3]`` one at a time, so memory does not
depend on the length of the video.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from vda.errors import VideoError

logger = logging.getLogger(__name__)


def ensure_even(value: int) -> int:
    """Round an odd side up to the next even number (H.264 with yuv420p needs even sides)."""
    return value if value % 2 == 0 else value + 1


def decoded_size(width: int, height: int, max_res: int) -> tuple[int, int]:
    """Frame size after the ``max_res`` limit: the long side scaled down to ``max_res``, even sides.

    ``max_res <= 0`` or a video already within the limit keeps its size.
    """
    if max_res <= 0 or max(width, height) <= max_res:
        return width, height
    scale = max_res / max(width, height)
    return ensure_even(round(width * scale)), ensure_even(round(height * scale))


def frame_stride(source_fps: Fraction, target_fps: float) -> int:
    """Keep every ``stride``-th frame so that the frame rate gets as close to ``target_fps`` as possible."""
    if target_fps <= 0:
        return 1
    return max(round(float(source_fps) / target_fps), 1)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learnt about a video and how it will be decoded."""

    path: Path
    source_width: int
    source_height: int
    source_fps: Fraction
    width: int  # decoded frame size (after max_res)
    height: int
    stride: int  # keep every stride-th source frame
    fps: Fraction  # frame rate of the decoded sequence: source_fps / stride, exact
    max_len: int  # <= 0: no limit
    estimated_frames: Optional[int]  # from the container, after stride and max_len; None when unknown

    @property
    def stem(self) -> str:
        return self.path.stem


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise VideoError(
            f"cannot read {path} as a video ({exc.strerror or exc}); pass a video file FFmpeg can decode"
        ) from None


def _rate(stream: av.video.stream.VideoStream, path: Path) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise VideoError(f"{path} does not say its frame rate; re-encode it with a constant frame rate")
    return Fraction(rate.numerator, rate.denominator)


def _estimate_frames(stream: av.video.stream.VideoStream, container, fps: Fraction) -> Optional[int]:
    if stream.frames:
        return int(stream.frames)
    if stream.duration is not None and stream.time_base is not None:
        return math.ceil(float(stream.duration * stream.time_base * fps))
    if container.duration:
        return math.ceil(container.duration / av.time_base * float(fps))
    return None


def _decode(container, stream, path: Path) -> Iterator[av.VideoFrame]:
    """Decode every frame of ``stream``; packets FFmpeg cannot decode are skipped with a warning."""
    skipped = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            skipped += 1
            continue
        yield from frames
    if skipped:
        logger.warning("%s: skipped %d packet(s) FFmpeg could not decode", path, skipped)


def probe(path: str | os.PathLike, max_res: int = 1280, target_fps: float = -1, max_len: int = -1) -> VideoInfo:
    """Check that ``path`` is a video with at least one decodable frame and describe how it will be read.

    Raises :class:`VideoError` with a one-line reason otherwise (missing file, not a video, no video stream,
    no decodable frame).
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"input video {path} does not exist; check the path given as input=")
    if not path.is_file():
        raise VideoError(f"input {path} is not a file; pass a video file as input=")
    with _open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path} has no video stream (audio or data only); pass a file that holds video")
        stream = container.streams.video[0]
        source_fps = _rate(stream, path)
        try:
            first = next(_decode(container, stream, path), None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot decode {path} ({exc.strerror or exc}); the file may be damaged") from None
        if first is None:
            raise VideoError(f"{path} has a video stream but no decodable frame; the file may be damaged or empty")
        estimated = _estimate_frames(stream, container, source_fps)
        source_width, source_height = first.width, first.height
    width, height = decoded_size(source_width, source_height, max_res)
    stride = frame_stride(source_fps, target_fps)
    if estimated is not None:
        estimated = math.ceil(estimated / stride)
        if max_len > 0:
            estimated = min(estimated, max_len)
    return VideoInfo(
        path=path,
        source_width=source_width,
        source_height=source_height,
        source_fps=source_fps,
        width=width,
        height=height,
        stride=stride,
        fps=source_fps / stride,
        max_len=max_len,
        estimated_frames=estimated,
    )


class VideoReader:
    """Iterate over the frames of a probed video as RGB ``uint8`` arrays ``[height, width, 3]``.

    Frames are decoded on demand; each iteration opens the file afresh.
    """

    def __init__(self, info: VideoInfo) -> None:
        self.info = info

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        info = self.info
        if (frame.width, frame.height) == (info.width, info.height):
            return frame.to_ndarray(format="rgb24")
        return frame.reformat(width=info.width, height=info.height, format="rgb24", interpolation="AREA").to_ndarray()

    def __iter__(self) -> Iterator[np.ndarray]:
        info = self.info
        with _open(info.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            kept = 0
            try:
                for index, frame in enumerate(_decode(container, stream, info.path)):
                    if index % info.stride:
                        continue
                    yield self._to_rgb(frame)
                    kept += 1
                    if kept == info.max_len:
                        return
            except av.error.FFmpegError as exc:
                raise VideoError(f"decoding {info.path} failed after {kept} frames ({exc.strerror or exc})") from None


__all__ = ["VideoInfo", "VideoReader", "decoded_size", "ensure_even", "frame_stride", "probe"]
