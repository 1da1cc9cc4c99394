"""Shared fixtures: synthetic videos written with PyAV, seeded random checkpoints, tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest

from vda import build_model
from vda.video.synthetic import synthetic_frames, write_video
from vda.weights import random_state_dict, save_checkpoint


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
