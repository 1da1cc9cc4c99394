"""Output formats of an inference run, one record each in :data:`OUTPUTS`: ``npz``, ``vis``, ``src``, ``png16``.

A format is a file (or folder) name pattern and an :class:`OutputWriter` that sees the decoded frames as they
are read (:meth:`OutputWriter.add_frame`, for formats that copy the source) and the finished depth in its
scratch store (:meth:`OutputWriter.finish`). Each output is written under a staged temporary name and
appears only when all are complete. The ``output`` config group (``output.<name>=true|false``) and the output
names are derived from this registry: a new format is one :func:`OUTPUTS.register <vda.registry.Registry.register>`
call here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from tqdm import tqdm

from vda.outputs.writers import DepthStore, depth_bytes, write_png16, write_preview
from vda.registry import Registry
from vda.video.reader import VideoInfo
from vda.video.writer import DEFAULT_PRESET, VideoWriter


@dataclass
class OutputContext:
    """What a writer may need: the video, the output options, whether depth is metric."""

    info: VideoInfo
    options: Any  # an OutputConfig
    metric: bool


class OutputWriter:
    """Writes one output to ``path`` (its staged temporary name).

    ``progress_unit``: what :meth:`finish` reports progress in ("frame", "B", or None: nothing to report);
    ``background``: :meth:`finish` may run in a thread beside the other writers (plain file copies).
    """

    progress_unit: Optional[str] = "frame"
    background = False

    def __init__(self, path: Path, context: OutputContext) -> None:
        self.path = path
        self.context = context

    def add_frame(self, frame: np.ndarray) -> None:
        """One decoded RGB frame ``[H, W, 3]``, in order (only formats with ``takes_frames``)."""

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        """Write the output from the complete depth, calling ``on_progress(n)`` as it goes."""

    def abort(self) -> None:
        """Release what the writer holds; the staged file is deleted by the caller."""


class NpzWriter(OutputWriter):
    progress_unit = "B"
    background = True

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        store.write_npz(self.path, self.context.info.fps, on_progress)


class PreviewWriter(OutputWriter):
    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        options = self.context.options
        write_preview(store, self.path, self.context.info.fps, options.grayscale, options.preset, on_progress)


class SourceWriter(OutputWriter):
    progress_unit = None

    def __init__(self, path: Path, context: OutputContext) -> None:
        super().__init__(path, context)
        info = context.info
        self.video: Optional[VideoWriter] = VideoWriter(path, info.width, info.height, info.fps, preset=context.options.preset)

    def add_frame(self, frame: np.ndarray) -> None:
        self.video.write(frame)

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        self.video.close()
        self.video = None

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
            self.video = None


class Png16Writer(OutputWriter):
    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        unit = "metres" if self.context.metric else "relative (inverse depth, arbitrary scale)"
        write_png16(store, self.path, unit, on_frames=on_progress)


@dataclass(frozen=True)
class OutputFormat:
    filename: str  # pattern with {stem}
    writer: type[OutputWriter]
    default: bool = False
    takes_frames: bool = False  # sees the decoded frames (add_frame)

    def name_for(self, stem: str) -> str:
        return self.filename.format(stem=stem)


OUTPUTS: Registry[OutputFormat] = Registry("output")
OUTPUTS.register("npz", OutputFormat("{stem}_depths.npz", NpzWriter, default=True), help="depths [N, H, W] float32, fps")
OUTPUTS.register("vis", OutputFormat("{stem}_vis.mp4", PreviewWriter, default=True), help="colour-mapped preview")
OUTPUTS.register("src", OutputFormat("{stem}_src.mp4", SourceWriter, takes_frames=True), help="the decoded frames")
OUTPUTS.register("png16", OutputFormat("{stem}_depths_png16", Png16Writer), help="16-bit PNGs plus scale.json")

# Options of the output group that are not formats: (name, type, default, help).
OUTPUT_OPTIONS = (
    ("grayscale", bool, False, "grayscale preview instead of inferno"),
    ("progress", bool, True, "progress bar on stderr"),
    ("overwrite", bool, False, "replace existing results for an input instead of refusing (one video) or skipping it (a folder)"),
    ("preset", str, DEFAULT_PRESET, "libx264 preset of the preview and source copy: faster encodes, larger files"),
)


def _output_config() -> type:
    formats = [(r.name, bool, field(default=r.value.default)) for r in OUTPUTS.records()]
    options = [(name, kind, field(default=default)) for name, kind, default, _ in OUTPUT_OPTIONS]
    cls = make_dataclass(
        "OutputConfig",
        formats + options,
        namespace={"__doc__": "output.<format>=true|false for every registered format, plus the output options."},
    )
    cls.__module__ = __name__  # picklable (worker processes get the config)
    return cls


OutputConfig = _output_config()


def _bar(writer: OutputWriter, store: DepthStore, progress: bool, desc: str) -> tqdm:
    total = depth_bytes(store.count, store.height, store.width) if writer.progress_unit == "B" else store.count
    scaled = {"unit_scale": True, "unit_divisor": 1024} if writer.progress_unit == "B" else {}
    label = f"{desc} {type(writer).__name__.removesuffix('Writer').lower()}".strip()
    show = progress and writer.progress_unit is not None
    return tqdm(total=total, unit=writer.progress_unit or "", desc=label, disable=not show, leave=False, dynamic_ncols=True, **scaled)


def finish_outputs(writers: list[OutputWriter], store: DepthStore, progress: bool = False, desc: str = "") -> None:
    """The second pass over the complete depth: every writer's :meth:`~OutputWriter.finish`, each with its own
    progress bar (behind ``progress``) instead of a silent pause after the main bar reached 100 %. Background
    writers (the npz copy) run in a thread meanwhile; returns when all are complete, also after a failure."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vda-output") as pool:
        jobs = []
        try:
            for writer in writers:
                bar = _bar(writer, store, progress, desc)
                if writer.background:
                    jobs.append((pool.submit(writer.finish, store, bar.update), bar))
                    continue
                with bar:
                    writer.finish(store, bar.update)
        finally:
            for job, bar in jobs:  # nothing may still write once the caller cleans up
                try:
                    job.result()
                finally:
                    bar.close()


def enabled_formats(options: Any) -> list[str]:
    return [r.name for r in OUTPUTS.records() if getattr(options, r.name, False)]


def output_names(stem: str) -> dict[str, str]:
    """File (or folder) name of every format for an input named ``stem``."""
    return {r.name: r.value.name_for(stem) for r in OUTPUTS.records()}


__all__ = [
    "OUTPUTS",
    "OUTPUT_OPTIONS",
    "NpzWriter",
    "OutputConfig",
    "OutputContext",
    "OutputFormat",
    "OutputWriter",
    "Png16Writer",
    "PreviewWriter",
    "SourceWriter",
    "enabled_formats",
    "finish_outputs",
    "output_names",
]
