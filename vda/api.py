"""The public Python API: depth for a video file or for frames you already hold.

    import vda
    model = vda.build_model(encoder="vits", device="auto", precision="auto", checkpoint="auto")
    depth = vda.infer_video(model, "clip.mp4", input_size=518)      # float32 [N, H, W]
    for maps in vda.iter_depth(model, frames):                         # [k, H, W] as they become final
        ...

Both run the offline algorithm exactly as ``run_infer.py`` does (same windows, alignment and feature cache),
so the numbers equal the ``depths`` of its ``.npz`` for the same frames.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, Optional, Union

import numpy as np
import torch

from vda.errors import InputShapeError
from vda.depth.engine import WindowedDepth
from vda.depth.settings import InferSettings
from vda.video.reader import VideoReader, probe

Video = Union[str, os.PathLike, np.ndarray, Iterable[np.ndarray]]


def _checked(frames: Iterable[np.ndarray], max_len: int) -> Iterator[np.ndarray]:
    shape = None
    for index, frame in enumerate(frames):
        if index == max_len:
            return
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise InputShapeError(f"frame {index}: expected RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise InputShapeError(f"frame {index} is {frame.shape[:2]} but frame 0 is {shape[:2]}; all frames need one size")
        yield frame


def _frames(video: Video, max_res: int, target_fps: float, max_len: int) -> Iterator[np.ndarray]:
    if isinstance(video, (str, os.PathLike)):
        return iter(VideoReader(probe(video, max_res=max_res, target_fps=target_fps, max_len=max_len)))
    return _checked(video, max_len)


def iter_depth(
    model: torch.nn.Module,
    video: Video,
    input_size: int = InferSettings.input_size,
    max_res: int = InferSettings.max_res,
    target_fps: float = InferSettings.target_fps,
    max_len: int = InferSettings.max_len,
    feature_cache: bool = InferSettings.feature_cache,
    scene_threshold: Optional[float] = None,
) -> Iterator[np.ndarray]:
    """Float32 depth maps ``[k, H, W]`` in frame order, yielded as soon as they are final (bounded memory).

    ``video``: a path (decoded with ``max_res``, ``target_fps`` and ``max_len`` as ``run_infer.py`` does), or
    RGB ``uint8`` frames ``[H, W, 3]`` (an array ``[N, H, W, 3]`` or any iterable; only ``max_len`` applies).
    ``scene_threshold`` (e.g. ``vda.depth.scenes.DEFAULT_SCENE_THRESHOLD``): split at shot cuts, each shot on its
    own windows and alignment, as ``infer.scene_cuts=true`` does; None (default): no cut handling.
    """
    engine = WindowedDepth(model, input_size, feature_cache, scene_threshold=scene_threshold)
    for depth in engine.run(_frames(video, max_res, target_fps, max_len)):
        yield depth.float().cpu().numpy()


def infer_video(model: torch.nn.Module, video: Video, input_size: int = InferSettings.input_size, **options) -> np.ndarray:
    """Float32 depth ``[N, H, W]`` for every frame of ``video`` (see :func:`iter_depth` for the options)."""
    return np.concatenate(list(iter_depth(model, video, input_size, **options)))


__all__ = ["infer_video", "iter_depth"]
