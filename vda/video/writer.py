"""Video and image writers: H.264 (yuv420p) via PyAV, depth colour maps, 16-bit PNG."""

from __future__ import annotations

import logging
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

from vda.errors import OutputError, VideoError

logger = logging.getLogger(__name__)

# Tried in order; the first one this FFmpeg build has is used.
H264_ENCODER = "libx264"
FALLBACK_ENCODERS = ("libopenh264", "h264_videotoolbox", "h264_nvenc", "mpeg4")


def pick_encoder(preferred: str = H264_ENCODER) -> str:
    """``preferred`` when this FFmpeg build has it, otherwise the first available fallback (with a warning)."""
    for name in (preferred, *FALLBACK_ENCODERS):
        try:
            av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if name != preferred:
            logger.warning("video encoder %s is not available in this FFmpeg build; writing with %s", preferred, name)
        return name
    raise VideoError(
        f"no video encoder found among {preferred}, {', '.join(FALLBACK_ENCODERS)}; install FFmpeg with libx264"
    )


def inferno_lut() -> np.ndarray:
    """Matplotlib's inferno colour map as a ``[256, 3]`` ``uint8`` lookup table."""
    from matplotlib import colormaps

    return (np.asarray(colormaps["inferno"].colors, dtype=np.float64) * 255.0).astype(np.uint8)


def colorize(depth: np.ndarray, d_min: float, d_max: float, lut: Optional[np.ndarray]) -> np.ndarray:
    """Depth ``[..., H, W]`` -> RGB ``uint8`` ``[..., H, W, 3]``, normalised by the given range.

    ``lut=None`` gives grayscale.
    """
    span = d_max - d_min
    scale = 255.0 / span if span > 0 else 0.0
    index = np.clip((depth - d_min) * scale, 0, 255).astype(np.uint8)
    if lut is None:
        return np.repeat(index[..., None], 3, axis=-1)
    return lut[index]


class VideoWriter:
    """Write RGB ``uint8`` frames to an H.264 yuv420p ``.mp4`` at an exact (rational) frame rate.

    Odd frame sides are padded by one replicated row/column, since yuv420p needs even sides.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: Fraction, crf: int = 18) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.count = 0
        codec = pick_encoder()
        try:
            self._container = av.open(str(self.path), mode="w", format="mp4")
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(
                f"cannot create {self.path} ({exc}); check that the output directory is writable"
            ) from None
        stream = self._container.add_stream(codec, rate=Fraction(fps))
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        if codec == H264_ENCODER:
            stream.options = {"crf": str(crf)}
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame ``[height, width, 3]``."""
        if frame.shape != (self.height, self.width, 3):
            raise VideoError(f"frame of shape {frame.shape} given to a {self.height}x{self.width} video writer")
        if self.width % 2 or self.height % 2:
            frame = np.pad(frame, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.count
        self._container.mux(self._stream.encode(video_frame))
        self.count += 1

    def close(self) -> Path:
        """Flush the encoder and close the file."""
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return self.path

    def abort(self) -> None:
        """Close the file without flushing the encoder (the caller deletes it)."""
        try:
            self._container.close()
        except av.error.FFmpegError as exc:
            logger.debug("closing the aborted %s: %s", self.path, exc)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png16(image: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG of ``image`` (``uint16`` ``[H, W]``)."""
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"expected a uint16 [H, W] image, got {image.dtype} {image.shape}")
    height, width = image.shape
    rows = image.astype(">u2").view(np.uint8).reshape(height, width * 2)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        ]
    )


__all__ = ["VideoWriter", "colorize", "encode_png16", "inferno_lut", "pick_encoder"]
