"""Video input and output with PyAV: lazy decoding, stream-mode sources, H.264 previews, 16-bit PNG depth."""

from vda.video.reader import (
    VideoInfo,
    VideoReader,
    decoded_size,
    ensure_even,
    frame_stride,
    probe,
)
from vda.video.sources import (
    FrameSource,
    ImageFolderSource,
    LiveSource,
    VideoFileSource,
    open_source,
)
from vda.video.writer import (
    VideoWriter,
    colorize,
    encode_png16,
    inferno_lut,
    pick_encoder,
)

__all__ = [
    "FrameSource",
    "ImageFolderSource",
    "LiveSource",
    "VideoFileSource",
    "open_source",
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
