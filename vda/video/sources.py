"""Frame sources for stream mode: a video file, a folder of images, or a live source FFmpeg opens.

:func:`open_source` picks the kind from the string it is given:

* an existing file: a video, read lazily by :class:`~vda.video.reader.VideoReader`;
* an existing folder: its ``.png`` / ``.jpg`` / ``.jpeg`` images sorted by file name, one frame each (all of
  one size), at ``image_fps`` frames per second;
* ``SCHEME://...`` (``rtsp://``, ``rtmp://``, ``http(s)://``, ``udp://``, ``srt://``, ...): a network stream;
* ``FORMAT:TARGET``: an FFmpeg input device or virtual input, e.g. ``v4l2:/dev/video0`` (Linux camera),
  ``avfoundation:0`` (macOS camera), ``dshow:video=NAME`` (Windows), ``x11grab::0.0`` (screen),
  ``lavfi:testsrc=size=640x480:rate=30`` (synthetic). The format must exist in PyAV's FFmpeg build.

Every source yields RGB ``uint8`` frames ``[height, width, 3]`` with the long side limited to ``max_res``
(as the video reader does) and stops after ``max_len`` frames when ``max_len > 0``. Network streams and
devices are *live*: read once, as they arrive, and without a known length; frames are not dropped, so a
consumer slower than the source falls behind it.
"""

from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import av
import numpy as np

from vda.errors import VideoError
from vda.video.reader import ALL_FRAMES, EVERY_FRAME, MAX_RES, VideoReader, decoded_size, probe

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_IMAGE_FPS = 30
DEFAULT_LIVE_FPS = 30  # when a live source does not say its rate
LIVE_TIMEOUT_S = 10.0  # opening a live source, and waiting for each of its packets

_DEVICE = re.compile(r"^(?P<format>[A-Za-z][A-Za-z0-9_]+):(?P<target>.*)$")


class FrameSource(ABC):
    """Where stream-mode frames come from: size, rate, whether it is live, and the frames themselves."""

    name: str
    width: int  # frame size after max_res
    height: int
    fps: Fraction
    is_live: bool
    estimated_frames: Optional[int]  # None when unknown (live sources)

    @abstractmethod
    def __iter__(self) -> Iterator[np.ndarray]:
        """RGB ``uint8`` frames ``[height, width, 3]``, in order."""

    def close(self) -> None:
        """Release what the source holds open (a no-op for files and folders)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.width}x{self.height} @ {self.fps} fps)"


class VideoFileSource(FrameSource):
    """A video file, decoded lazily; every iteration starts from the beginning."""

    is_live = False

    def __init__(self, path: str | os.PathLike, max_res: int = MAX_RES, max_len: int = ALL_FRAMES, target_fps: float = EVERY_FRAME):
        self.info = probe(path, max_res=max_res, target_fps=target_fps, max_len=max_len)
        self.name = str(self.info.path)
        self.width, self.height = self.info.width, self.info.height
        self.fps = self.info.fps
        self.estimated_frames = self.info.estimated_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(VideoReader(self.info))


class ImageFolderSource(FrameSource):
    """The images of a folder sorted by file name, all of one size, one frame each at ``fps``."""

    is_live = False

    def __init__(self, folder: str | os.PathLike, max_res: int = MAX_RES, max_len: int = ALL_FRAMES, fps=DEFAULT_IMAGE_FPS):
        folder = Path(folder)
        self.name = str(folder)
        paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise VideoError(
                f"image folder {folder} holds no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} file; "
                "pass a folder of frames or a video"
            )
        if max_len > 0:
            paths = paths[:max_len]
        sizes = {path: _image_size(path) for path in paths}  # headers only
        first = sizes[paths[0]]
        for path, size in sizes.items():
            if size != first:
                raise VideoError(
                    f"{path} is {size[0]}x{size[1]} but {paths[0].name} is {first[0]}x{first[1]}; "
                    f"all images of {folder} must have one size"
                )
        self.paths = paths
        self.source_size = first
        self.width, self.height = decoded_size(first[0], first[1], max_res)
        self.fps = Fraction(fps).limit_denominator(1001)
        if self.fps <= 0:
            raise VideoError(f"image folder {folder}: frame rate must be positive, got {fps}")
        self.estimated_frames = len(paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield _load_rgb(path, (self.width, self.height))


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise VideoError(f"cannot read image {path} ({exc}); remove it or replace it with a valid png/jpg") from None


def _image_size(path: Path) -> tuple[int, int]:
    with _open_image(path) as image:
        return image.size


def _load_rgb(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The image at ``path`` as RGB ``uint8`` ``[h, w, 3]``, area-resized to ``size`` = (w, h) if needed."""
    from PIL import Image

    with _open_image(path) as image:
        try:
            image = image.convert("RGB")
        except OSError as exc:  # a valid header over damaged data
            raise VideoError(f"cannot decode image {path} ({exc}); remove it or replace it with a valid png/jpg") from None
    if image.size != size:
        image = image.resize(size, Image.Resampling.BOX)
    return np.asarray(image, dtype=np.uint8)


class LiveSource(FrameSource):
    """A network stream or an input device, opened once and read once as frames arrive.

    The first frame is decoded when the source is opened (to learn the frame size, and so that a source
    that gives nothing fails at once); iterate over the source once.
    """

    is_live = True
    estimated_frames = None

    def __init__(
        self,
        url: str,
        input_format: Optional[str] = None,
        max_res: int = MAX_RES,
        max_len: int = ALL_FRAMES,
        timeout_s: float = LIVE_TIMEOUT_S,
    ) -> None:
        self.name = url if input_format is None else f"{input_format}:{url}"
        self.max_len = max_len
        try:
            self._container = av.open(url, mode="r", format=input_format, timeout=timeout_s)
        except av.error.FFmpegError as exc:
            raise VideoError(
                f"cannot open the live source {self.name} ({exc.strerror or exc}); check the address or device"
            ) from None
        if not self._container.streams.video:
            self.close()
            raise VideoError(f"live source {self.name} has no video stream; pass a source that sends video")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = Fraction(rate.numerator, rate.denominator) if rate else Fraction(DEFAULT_LIVE_FPS)
        self._frames = self._container.decode(stream)
        self._first = self._next_frame()
        if self._first is None:
            self.close()
            raise VideoError(f"live source {self.name} sent no frame; check that it is streaming")
        self.width, self.height = decoded_size(self._first.width, self._first.height, max_res)
        self._started = False

    def _next_frame(self) -> Optional[av.VideoFrame]:
        try:
            return next(self._frames, None)
        except av.error.FFmpegError as exc:
            raise VideoError(f"reading the live source {self.name} failed ({exc.strerror or exc})") from None

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        if (frame.width, frame.height) == (self.width, self.height):
            return frame.to_ndarray(format="rgb24")
        return frame.reformat(width=self.width, height=self.height, format="rgb24", interpolation="AREA").to_ndarray()

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise VideoError(f"live source {self.name} can be read only once; open it again")
        self._started = True
        frame, count = self._first, 0
        self._first = None
        while frame is not None:
            yield self._to_rgb(frame)
            count += 1
            if count == self.max_len:
                return
            frame = self._next_frame()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def parse_live(spec: str) -> Optional[tuple[str, Optional[str]]]:
    """``(url, input_format)`` when ``spec`` names a live source, else None (a path)."""
    if "://" in spec:
        return spec, None
    match = _DEVICE.match(spec)
    if match is None:
        return None
    return match["target"], match["format"]


def open_source(
    spec: str | os.PathLike,
    max_res: int = MAX_RES,
    max_len: int = ALL_FRAMES,
    target_fps: float = EVERY_FRAME,
    image_fps: float | Fraction = DEFAULT_IMAGE_FPS,
    timeout_s: float = LIVE_TIMEOUT_S,
) -> FrameSource:
    """Open a video file, an image folder or a live source (see the module doc for the naming).

    ``target_fps`` thins a video file by frame stride (as offline); ``image_fps`` is the rate given to an
    image folder; ``timeout_s`` bounds the wait for a live source. Raises :class:`VideoError` with a
    one-line reason when the source cannot be used.
    """
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, max_res=max_res, max_len=max_len, fps=image_fps)
    if path.exists():
        return VideoFileSource(path, max_res=max_res, max_len=max_len, target_fps=target_fps)
    live = parse_live(str(spec))
    if live is None:
        raise VideoError(
            f"input {spec} does not exist; pass a video file, a folder of images, a URL (rtsp://...) "
            "or FORMAT:DEVICE (e.g. v4l2:/dev/video0)"
        )
    url, input_format = live
    if input_format is not None and input_format not in av.formats_available:
        raise VideoError(
            f"input {spec}: this FFmpeg build has no input format {input_format!r}; "
            "use a URL, a file, or a format PyAV lists in av.formats_available"
        )
    return LiveSource(url, input_format, max_res=max_res, max_len=max_len, timeout_s=timeout_s)


__all__ = [
    "DEFAULT_IMAGE_FPS",
    "FrameSource",
    "ImageFolderSource",
    "LiveSource",
    "VideoFileSource",
    "open_source",
    "parse_live",
]
