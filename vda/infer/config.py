"""Top-level schema of ``run_infer.py`` (registered in Hydra's ConfigStore as ``base_infer``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from vda.config import RunConfig, store_choice_groups, store_defaults
from vda.depth.settings import InferSettings
from vda.outputs.formats import OutputConfig
from vda.depth.modes import MODES, ModeConfig


@dataclass
class InferConfig(RunConfig):
    # A video file, a folder of videos (outputs mirror its sub-folders) or @list.txt (one path a line); in
    # mode=stream a video file, a folder of images or a live source (rtsp://..., v4l2:/dev/video0, avfoundation:0).
    input: str = MISSING
    # offline or stream (the group is generated from vda.depth.modes.MODES)
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
    store_defaults(cs, "infer_defaults", "base_infer", InferConfig(), mode=ModeConfig.name)


__all__ = ["InferConfig", "InferSettings", "OutputConfig", "register_configs"]
