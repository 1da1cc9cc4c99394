"""Lazy video decoding with PyAV: ``max_res`` downscale, ``target_fps`` by frame stride, ``max_len``.

:func:`probe` opens the file, checks that it holds a decodable video stream and works out the decoded
frame size and the exact (rational) output frame rate without reading more than the first frame.
:class:`VideoReader` then yields RGB ``uint8`` frames ``[H, W, 3]`` one at a time, so memory does not
depend on the length of the video.

Damaged input is read as far as it goes: packets FFmpeg cannot decode are skipped, a file cut short ends
where its data ends, and the frames lost are counted (:attr:`VideoReader.frames_skipped`). Frames are
turned upright as the video is displayed (the display-matrix rotation phones write), whatever the pixel
format (8/10-bit, grayscale) or size (odd sides); a variable frame rate is read at its average rate.
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

# Decode defaults (the infer.* settings refer to these): long side limit, every frame, all frames.
MAX_RES = 1280
EVERY_FRAME = -1.0
ALL_FRAMES = -1

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
    rotation: int = 0  # counter-clockwise turn (0, 90, 180, -90) applied to decoded frames to display them

    @property
    def stem(self) -> str:
        return self.path.stem


def _open(path: Path) -> av.container.InputContainer:
    try:
        # tags are not needed and may be damaged: undecodable bytes must not make the file unreadable
        return av.open(str(path), mode="r", metadata_errors="replace")
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


@dataclass
class DecodeTally:
    """What one pass over a stream read: packets with data, frames out, packets the decoder refused, and
    whether the container ended early (a file cut short or an unreadable packet)."""

    declared: int = 0  # frames the container says it holds; 0 when it does not say
    packets: int = 0
    frames: int = 0
    failed_packets: int = 0
    cut_short: bool = False
    rate: float = 0.0  # average frame rate
    end_time: Optional[float] = None  # where the container says the stream ends, in seconds
    first_time: Optional[float] = None  # presentation time of the earliest decoded frame, in seconds
    last_time: Optional[float] = None  # presentation time of the latest decoded frame, in seconds

    def see(self, frame: av.VideoFrame) -> None:
        self.frames += 1
        if frame.time is not None:
            self.first_time = frame.time if self.first_time is None else min(self.first_time, frame.time)
            self.last_time = frame.time if self.last_time is None else max(self.last_time, frame.time)

    @property
    def missing_tail(self) -> int:
        """Frames between the last decoded one and the stream's announced end (a file cut short); the last
        frame itself lasts one frame, hence the -1."""
        if self.end_time is None or self.last_time is None or self.rate <= 0:
            return 0
        return max(round((self.end_time - self.last_time) * self.rate) - 1, 0)

    @property
    def span(self) -> int:
        """Frame periods from the first decoded frame to the stream's announced end; 0 if unknown."""
        if self.end_time is None or self.first_time is None or self.rate <= 0:
            return 0
        return round((self.end_time - self.first_time) * self.rate)

    @property
    def frames_lost(self) -> int:
        """Source frames that produced no picture: every packet and every declared frame is one frame, and
        so is every frame period missing at the end (the largest of the counts, not their sum). When the end
        is missing, frames reordered behind the last decoded one (B-frames) are lost too, so the whole span
        from the first frame to the announced end counts."""
        if self.complete:
            return 0
        counted = max(self.declared, self.packets, self.frames + self.missing_tail)
        if self.missing_tail:
            counted = max(counted, self.span)
        return counted - self.frames

    @property
    def complete(self) -> bool:
        """Every frame the container counts was decoded (its timestamps may still be wrong)."""
        return 0 < self.declared <= self.frames

    @property
    def truncated(self) -> bool:
        if self.complete:
            return False
        return self.cut_short or self.declared > self.packets or self.missing_tail > 0


def _end_time(stream, container) -> Optional[float]:
    """Where the stream ends according to the container (start + duration), in seconds; None if unknown."""
    if stream.duration and stream.time_base:
        return float((stream.start_time or 0) * stream.time_base + stream.duration * stream.time_base)
    if container.duration:
        return ((container.start_time or 0) + container.duration) / av.time_base
    return None


def _packets(container, stream, path: Path, tally: DecodeTally) -> Iterator[av.Packet]:
    """The stream's packets; a read error (truncated or damaged container) ends the stream, logged."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            tally.cut_short = True
            logger.debug("%s: reading stopped after %d packets (%s)", path, tally.packets, exc)
            return
        if packet.size:
            tally.packets += 1
        yield packet


def _decode(container, stream, path: Path, tally: Optional[DecodeTally] = None) -> Iterator[av.VideoFrame]:
    """Decode every frame of ``stream``; packets FFmpeg cannot decode are skipped and counted in ``tally``."""
    tally = tally if tally is not None else DecodeTally()
    tally.declared = max(int(stream.frames or 0), 0)
    tally.end_time = _end_time(stream, container)
    rate = stream.average_rate or stream.guessed_rate
    tally.rate = float(rate) if rate else 0.0
    for packet in _packets(container, stream, path, tally):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            tally.failed_packets += 1
            logger.debug("%s: packet %d not decodable (%s)", path, tally.packets, exc)
            continue
        for frame in frames:
            tally.see(frame)
            yield frame
    if tally.cut_short:  # demux stopped without its flush packet: drain the frames still in the decoder
        try:
            frames = stream.codec_context.decode(None)
        except av.error.FFmpegError:
            frames = []
        for frame in frames:
            tally.see(frame)
            yield frame


def display_rotation(frame: av.VideoFrame) -> int:
    """The frame's display-matrix rotation rounded to a quarter turn: 0, 90, 180 or -90 (counter-clockwise)."""
    quarter = round((frame.rotation or 0) / 90) % 4
    return (0, 90, 180, -90)[quarter]


def probe(
    path: str | os.PathLike, max_res: int = MAX_RES, target_fps: float = EVERY_FRAME, max_len: int = ALL_FRAMES
) -> VideoInfo:
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
        rotation = display_rotation(first)
        source_width, source_height = first.width, first.height
        if rotation in (90, -90):
            source_width, source_height = source_height, source_width
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
        rotation=rotation,
    )


class VideoReader:
    """Iterate over the frames of a probed video as RGB ``uint8`` arrays ``[height, width, 3]``.

    Frames are decoded on demand; each iteration opens the file afresh. After a complete iteration
    :attr:`frames_skipped` holds the number of source frames that could not be decoded (damaged packets,
    a file cut short); they are left out, so the sequence has one frame per decoded frame. :attr:`tally`
    holds the counts of the decoding pass.
    """

    def __init__(self, info: VideoInfo) -> None:
        self.info = info
        self.frames_skipped = 0
        self.tally = DecodeTally()

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        info = self.info
        coded = (info.height, info.width) if info.rotation in (90, -90) else (info.width, info.height)
        if (frame.width, frame.height) == coded:
            image = frame.to_ndarray(format="rgb24")
        else:
            image = frame.reformat(width=coded[0], height=coded[1], format="rgb24", interpolation="AREA").to_ndarray()
        if info.rotation:
            image = np.ascontiguousarray(np.rot90(image, k=info.rotation // 90))  # as displayed
        return image

    def _frames(self) -> Iterator[av.VideoFrame]:
        """Every decodable frame, counted in :attr:`tally`.

        Decoding is frame-threaded for speed, but frame threading drops the good frames in flight around a
        damaged packet, and at the end of a file cut short (the flush fails with frames still in the threads:
        how many depends on timing); after the first damaged packet, or after a cut-short end (the container
        stops early, or holds fewer packets or less time than it announces), the file is
        decoded again without it and the frames already given are skipped (by presentation time, or by count
        where frames carry none).
        """
        path = self.info.path
        self.tally = DecodeTally()
        given, last_pts = 0, None
        with _open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in _decode(container, stream, path, self.tally):
                if self.tally.failed_packets:
                    break
                given, last_pts = given + 1, frame.pts
                yield frame
        if not (self.tally.failed_packets or self.tally.truncated):
            return
        self.tally = DecodeTally()  # counts of the complete second pass
        logger.debug("%s: damaged or cut short; decoding again without frame threads after frame %d", path, given)
        with _open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            for index, frame in enumerate(_decode(container, stream, path, self.tally)):
                if index < given if last_pts is None or frame.pts is None else frame.pts <= last_pts:
                    continue
                yield frame

    def __iter__(self) -> Iterator[np.ndarray]:
        info = self.info
        self.frames_skipped = 0
        unconvertible = 0
        kept = 0
        for index, frame in enumerate(self._frames()):
            if index % info.stride:
                continue
            try:
                image = self._to_rgb(frame)
            except (av.error.FFmpegError, ValueError) as exc:  # a damaged frame FFmpeg cannot convert
                unconvertible += 1
                logger.debug("%s: frame %d not convertible to RGB (%s)", info.path, index, exc)
                continue
            yield image
            kept += 1
            if kept == info.max_len:
                return
        tally = self.tally
        self.frames_skipped = tally.frames_lost + unconvertible
        if self.frames_skipped:
            logger.warning(
                "%s: %d frame(s) could not be decoded (%s); depth covers the %d decoded frames",
                info.path,
                self.frames_skipped,
                "file cut short" if tally.truncated else "damaged data",
                kept,
            )


__all__ = [
    "DecodeTally",
    "VideoInfo",
    "VideoReader",
    "decoded_size",
    "display_rotation",
    "ensure_even",
    "frame_stride",
    "probe",
]
