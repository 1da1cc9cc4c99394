"""Video and image writers: H.264 (yuv420p) via PyAV, depth colour maps, 16-bit PNG."""

from __future__ import annotations

import io
import logging
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np

from vda.errors import ConfigError, OutputError, VideoError

logger = logging.getLogger(__name__)

# Tried in order; the first one this FFmpeg build has is used.
H264_ENCODER = "libx264"
FALLBACK_ENCODERS = ("libopenh264", "h264_videotoolbox", "h264_nvenc", "mpeg4")
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
DEFAULT_PRESET = "veryfast"  # ~2x the frames/s of libx264's own default (medium) at the same CRF


def check_preset(preset: str) -> None:
    """Refuse a libx264 preset that does not exist, in one line naming the valid ones."""
    if preset not in X264_PRESETS:
        raise ConfigError(f"unknown libx264 preset output.preset={preset!r}; choose one of {', '.join(X264_PRESETS)}")


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


def gray_lut() -> np.ndarray:
    """The identity grey ramp as a ``[256, 3]`` ``uint8`` lookup table."""
    return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)


class Colorizer:
    """Depth ``[H, W]`` -> RGB ``uint8`` ``[H, W, 3]`` through a 256-colour table, normalised by a fixed range.

    Same values as ``lut[clip((depth - d_min) * 255 / (d_max - d_min), 0, 255).astype(uint8)]``, computed in
    place in reused buffers, with the colours looked up two pixels at a time in a 65536-entry table of
    pixel pairs (one 6-byte copy per pair instead of fancy indexing per channel). ``lut=None`` gives grey.
    """

    def __init__(self, d_min: float, d_max: float, lut: Optional[np.ndarray] = None) -> None:
        self.set_range(d_min, d_max)
        self.lut = gray_lut() if lut is None else np.ascontiguousarray(lut, dtype=np.uint8)
        if self.lut.shape != (256, 3):
            raise ValueError(f"expected a [256, 3] colour table, got {self.lut.shape}")
        # pairs[second, first] = (colour of first, colour of second): a little-endian uint16 read of two
        # adjacent uint8 indices is first + 256 * second.
        pairs = np.empty((256, 256, 6), dtype=np.uint8)
        pairs[:, :, :3] = self.lut[None, :, :]
        pairs[:, :, 3:] = self.lut[:, None, :]
        self._pairs = pairs.reshape(65536, 6).view("V6").ravel() if sys.byteorder == "little" else None
        self._buffers: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def set_range(self, d_min: float, d_max: float) -> None:
        """Normalise the next maps by ``d_min`` .. ``d_max`` (a constant range gives colour 0)."""
        d_min, d_max = float(d_min), float(d_max)
        span = d_max - d_min
        self.d_min = d_min
        self.scale = 255.0 / span if span > 0 else 0.0

    def index(self, depth: np.ndarray) -> np.ndarray:
        """Depth ``[H, W]`` -> colour index ``uint8`` ``[H, W]`` (a buffer reused by the next call)."""
        shape = depth.shape
        if shape not in self._buffers:
            self._buffers[shape] = (np.empty(shape, np.result_type(depth, self.d_min)), np.empty(shape, np.uint8))
        work, index = self._buffers[shape]
        np.subtract(depth, self.d_min, out=work)
        np.multiply(work, self.scale, out=work)
        np.clip(work, 0, 255, out=work)
        np.copyto(index, work, casting="unsafe")
        return index

    def __call__(self, depth: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Depth ``[H, W]`` -> RGB ``uint8`` ``[H, W, 3]`` (into ``out`` when given)."""
        if depth.ndim != 2:
            raise ValueError(f"expected one depth map [H, W], got shape {depth.shape}")
        index = self.index(depth)
        height, width = depth.shape
        if out is None:
            out = np.empty((height, width, 3), dtype=np.uint8)
        if self._pairs is not None and width % 2 == 0 and out.flags.c_contiguous:
            pairs_out = out.reshape(height, width // 2, 6).view("V6").reshape(height, width // 2)
            np.take(self._pairs, index.view(np.uint16), out=pairs_out)
        else:
            np.take(self.lut, index, axis=0, out=out)
        return out


def colorize(depth: np.ndarray, d_min: float, d_max: float, lut: Optional[np.ndarray]) -> np.ndarray:
    """Depth ``[..., H, W]`` -> RGB ``uint8`` ``[..., H, W, 3]``, normalised by the given range.

    ``lut=None`` gives grayscale.
    """
    colorizer = Colorizer(d_min, d_max, lut)
    maps = np.asarray(depth).reshape(-1, *depth.shape[-2:])
    out = np.empty((*maps.shape, 3), dtype=np.uint8)
    for source, target in zip(maps, out):
        colorizer(source, target)
    return out.reshape(*depth.shape, 3)


class VideoWriter:
    """Write RGB ``uint8`` frames to an H.264 yuv420p ``.mp4`` at an exact (rational) frame rate.

    Odd frame sides are padded by one replicated row/column, since yuv420p needs even sides. ``crf`` and
    ``preset`` (one of :data:`X264_PRESETS`; a faster preset encodes faster, its files may be bigger at the
    same ``crf``) apply to libx264 only.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: Fraction,
        crf: int = 18,
        preset: str = DEFAULT_PRESET,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = width, height
        self.count = 0
        check_preset(preset)
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
            stream.options = {"crf": str(crf), "preset": preset}
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


def encode_png16(image: np.ndarray, compress_level: int = 1) -> bytes:
    """A 16-bit grayscale PNG of ``image`` (``uint16`` ``[H, W]``), encoded by Pillow.

    ``compress_level`` is zlib's level (0-9); Pillow's adaptive row filters make level 1 smaller than
    unfiltered level 6.
    """
    from PIL import Image

    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"expected a uint16 [H, W] image, got {image.dtype} {image.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


__all__ = [
    "DEFAULT_PRESET",
    "X264_PRESETS",
    "Colorizer",
    "VideoWriter",
    "check_preset",
    "colorize",
    "encode_png16",
    "gray_lut",
    "inferno_lut",
    "pick_encoder",
]
