"""Video input and output with PyAV: lazy decoding, H.264 previews, 16-bit PNG depth."""

from vda.video.reader import (
    VideoInfo,
    VideoReader,
    decoded_size,
    ensure_even,
    frame_stride,
    probe,
)
from vda.video.writer import (
    VideoWriter,
    colorize,
    encode_png16,
    inferno_lut,
    pick_encoder,
)

__all__ = [
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "colorize",
    "decoded_size",
    "encode_png16",
    "ensure_even",
    "frame_stride",
    "inferno_lut",
    "pick_encoder",
    "probe",
]
