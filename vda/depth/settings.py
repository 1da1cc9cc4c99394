"""How a video becomes depth: the ``infer.*`` settings (the one home of their defaults; the engines, the
stream, the Python API and both commands refer to them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from vda.depth.scenes import DEFAULT_SCENE_THRESHOLD
from vda.runtime.allocator import Allocator
from vda.video.reader import ALL_FRAMES, EVERY_FRAME, MAX_RES


@dataclass
class InferSettings:
    # Network input size (the short side, rounded to a multiple of 14; reduced for frames wider than 16:9).
    input_size: int = 518
    # Downscale frames whose long side exceeds this (even sides kept); -1: decode at full size.
    max_res: int = MAX_RES
    # Process at most this many frames (after target_fps); -1: all.
    max_len: int = ALL_FRAMES
    # Keep every round(source_fps / target_fps)-th frame; -1: every frame.
    target_fps: float = EVERY_FRAME
    # Reuse encoder features of carried-over keyframes and padding copies (same numbers, less work).
    feature_cache: bool = True
    # Decode and write in background threads behind bounded queues; false: everything in one thread.
    pipelined: bool = True
    # Split the video at shot cuts (offline: each shot runs on its own; stream: the state is reset). Off by
    # default, as in the published algorithm; recommended for edited footage.
    scene_cuts: bool = False
    # A cut is a jump of the mean frame difference (thumbnails, 0..1) above the shot's recent level by this much.
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD
    # Host memory during the model's loop: reuse keeps freed blocks for the next window (glibc: far less system
    # time, a higher resident size while it runs); system: the C library's default; auto: reuse where torch runs
    # the network, system on a graph runtime (ONNX Runtime, OpenVINO: they keep their own buffers).
    allocator: Allocator = Allocator.auto
    # Synchronise the device after every stage (exact per-stage split for profiling; stops copies overlapping
    # with compute); false: CUDA stages are timed with events, without a host synchronisation.
    sync_stages: bool = False
    # Folder or @list input: this many processes, each with its own model copy (several GPUs, or CPU threads split).
    workers: int = 1
    # Folder or @list input: process only shard i of n ("i/n", every n-th video from the i-th); null: all.
    shard: Optional[str] = None


__all__ = ["InferSettings"]
