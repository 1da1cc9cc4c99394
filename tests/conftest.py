"""Shared fixtures: synthetic videos written with PyAV, seeded random checkpoints, tiny models."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest

from vda.model import build_model
from vda.weights import random_state_dict, save_checkpoint


def synthetic_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smoothly moving colour patterns with some noise, RGB uint8 ``[count, height, width, 3]``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(count):
        r = 127 + 100 * np.sin((x + 3 * t) / 7.0)
        g = 127 + 100 * np.cos((y - 2 * t) / 5.0)
        b = 127 + 80 * np.sin((x + y + t) / 9.0)
        image = np.stack([r, g, b], axis=-1) + rng.normal(0, 8, (height, width, 3))
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return np.stack(frames)


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: Fraction | int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode RGB frames ``[N, H, W, 3]`` into ``path`` with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_video_with_options(path: Path, frames: np.ndarray, options: dict[str, str], fps: int = 24) -> Path:
    """:func:`write_video` with container options (e.g. ``{"movflags": "faststart"}``: the mp4 index in front)."""
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decode_all(path: Path) -> np.ndarray:
    """Every frame of the first video stream as RGB uint8 (independent of vda.video)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture
def make_video(tmp_path) -> Callable[..., Path]:
    """``make_video(name, count, height=48, width=64, fps=24, seed=0)`` -> path of a fresh H.264 clip."""

    def make(name: str = "clip.mp4", count: int = 30, height: int = 48, width: int = 64, fps=24, seed: int = 0) -> Path:
        return write_video(tmp_path / name, synthetic_frames(count, height, width, seed), fps=fps)

    return make


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """A seeded random relative vits checkpoint saved as a .pth file."""
    path = tmp_path_factory.mktemp("ckpt") / "vits_random.pth"
    return save_checkpoint(random_state_dict("vits", metric=False, seed=1), path)


@pytest.fixture(scope="session")
def random_metric_checkpoint(tmp_path_factory) -> Path:
    """A seeded random metric vits checkpoint saved as a .pth file."""
    path = tmp_path_factory.mktemp("ckpt") / "metric_vits_random.pth"
    return save_checkpoint(random_state_dict("vits", metric=True, seed=2), path)


@pytest.fixture(scope="session")
def tiny_model(random_checkpoint):
    """Relative vits loaded from ``random_checkpoint``, fp32 on CPU."""
    return build_model("vits", metric=False, device="cpu", precision="fp32", checkpoint=random_checkpoint)


@pytest.fixture(scope="session")
def tiny_metric_model(random_metric_checkpoint):
    """Metric vits loaded from ``random_metric_checkpoint``, fp32 on CPU."""
    return build_model("vits", metric=True, device="cpu", precision="fp32", checkpoint=random_metric_checkpoint)
