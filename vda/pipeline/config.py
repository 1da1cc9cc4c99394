"""Top-level schema of ``run_infer.py`` (registered in Hydra's ConfigStore as ``base_infer``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from vda.config import RunConfig, store_choice_groups
from vda.depth.scenes import DEFAULT_SCENE_THRESHOLD
from vda.pipeline.formats import OutputConfig
from vda.pipeline.modes import MODES


@dataclass
class InferSettings:
    # Network input size (the short side, rounded to a multiple of 14; reduced for frames wider than 16:9).
    input_size: int = 518
    # Downscale frames whose long side exceeds this (even sides kept); -1: decode at full size.
    max_res: int = 1280
    # Process at most this many frames (after target_fps); -1: all.
    max_len: int = -1
    # Keep every round(source_fps / target_fps)-th frame; -1: every frame.
    target_fps: float = -1.0
    # Reuse encoder features of carried-over keyframes and padding copies (same numbers, less work).
    feature_cache: bool = True
    # Decode and write in background threads behind bounded queues; false: everything in one thread.
    pipelined: bool = True
    # Split the video at shot cuts (offline: each shot runs on its own; stream: the state is reset). Off by
    # default, as in the published algorithm; recommended for edited footage.
    scene_cuts: bool = False
    # A cut is a jump of the mean frame difference (thumbnails, 0..1) above the shot's recent level by this much.
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD
    # Folder or @list input: this many processes, each with its own model copy (several GPUs, or CPU threads split).
    workers: int = 1
    # Folder or @list input: process only shard i of n ("i/n", every n-th video from the i-th); null: all.
    shard: Optional[str] = None


@dataclass
class InferConfig(RunConfig):
    # A video file, a folder of videos (outputs mirror its sub-folders) or @list.txt (one path a line); in
    # mode=stream a video file, a folder of images or a live source (rtsp://..., v4l2:/dev/video0, avfoundation:0).
    input: str = MISSING
    # offline or stream (the group is generated from vda.pipeline.modes.MODES)
    mode: Any = MISSING
    # Folder input: which files, relative to it (e.g. "*.mp4": top level only); null: every video file under it.
    input_glob: Optional[str] = None
    # Relative to the launch directory; Hydra keeps its own logs and resolved config in outputs/<date>/<time>.
    output_dir: str = "depth"
    infer: InferSettings = field(default_factory=InferSettings)
    output: OutputConfig = field(default_factory=OutputConfig)


def register_configs() -> None:
    cs = ConfigStore.instance()
    store_choice_groups(cs)
    for record in MODES.records():
        cs.store(group="mode", name=record.name, node=record.value.schema)
    cs.store(name="base_infer", node=InferConfig)


__all__ = ["InferConfig", "InferSettings", "OutputConfig", "register_configs"]
