"""Output formats of an inference run, one record each in :data:`OUTPUTS`: ``npz``, ``vis``, ``src``, ``png16``,
``exr``, ``ply``, ``depth_video`` (the writers of the last three live in :mod:`vda.outputs`).

A format is a file (or folder) name pattern and an :class:`OutputWriter` that sees the decoded frames as they
are read (:meth:`OutputWriter.add_frame`, for formats that copy the source) and the finished depth in its
scratch store (:meth:`OutputWriter.finish`), or the final depth as it comes (:meth:`OutputWriter.add_depth`, a
``live`` writer). Each output is written under a staged temporary name and
appears only when all are complete. The ``output`` config group (``output.<name>=true|false``) and the output
names are derived from this registry: a new format is one :func:`OUTPUTS.register <vda.registry.Registry.register>`
call here.
"""

from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from tqdm import tqdm

from vda.errors import ConfigError
from vda.outputs.base import OutputContext, OutputWriter
from vda.outputs.depth_video import DepthVideoWriter
from vda.outputs.exr import ExrWriter
from vda.outputs.normalize import RunningRange, check_vis_normalize
from vda.outputs.ply import DEFAULT_FOCAL_LENGTH, PlyWriter
from vda.outputs.writers import DepthStore, depth_bytes, write_png16, write_preview
from vda.registry import Registry
from vda.video.writer import DEFAULT_PRESET, Colorizer, VideoWriter, inferno_lut


class NpzWriter(OutputWriter):
    progress_unit = "B"
    background = True

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        store.write_npz(self.path, self.context.info.fps, on_progress)


class PreviewWriter(OutputWriter):
    """Second pass with the global range; with ``output.vis_normalize=running``, live with a running range."""

    def __init__(self, path: Path, context: OutputContext, sidecar: Optional[Path] = None) -> None:
        super().__init__(path, context, sidecar)
        options = context.options
        self.live = options.vis_normalize == "running"
        self.progress_unit = None if self.live else "frame"
        self.video: Optional[VideoWriter] = None
        if self.live:
            info = context.info
            self.range = RunningRange(options.vis_span)
            self.colorizer = Colorizer(0.0, 1.0, None if options.grayscale else inferno_lut())
            self.image = np.empty((info.height, info.width, 3), dtype=np.uint8)
            self.video = VideoWriter(path, info.width, info.height, info.fps, preset=options.preset)

    def add_depth(self, maps: np.ndarray) -> None:
        for depth in maps:
            self.colorizer.set_range(*self.range.update(depth))
            self.video.write(self.colorizer(depth, self.image))

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        options = self.context.options
        if self.live:
            self.video.close()
            self.video = None
            return
        write_preview(store, self.path, self.context.info.fps, options.grayscale, options.preset, on_progress)

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
            self.video = None


class SourceWriter(OutputWriter):
    progress_unit = None

    def __init__(self, path: Path, context: OutputContext, sidecar: Optional[Path] = None) -> None:
        super().__init__(path, context, sidecar)
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


def _needs_metric(options: Any, metric: bool) -> Optional[str]:
    if metric:
        return None
    return "output.ply=true needs metric depth (model.metric=true with a metric checkpoint); relative depth has no scale to place points in metres"


@dataclass(frozen=True)
class OutputFormat:
    filename: str  # pattern with {stem}
    writer: type[OutputWriter]
    default: bool = False
    takes_frames: bool = False  # sees the decoded frames (add_frame)
    bytes_per_pixel: Callable[[Any], float] = lambda options: 0.0  # estimated bytes per frame pixel (disk check)
    sidecar: Optional[str] = None  # pattern of a second file written beside it, staged with it
    requires: Optional[tuple[str, str]] = None  # (module, pip extra) the writer imports
    check: Callable[[Any, bool], Optional[str]] = lambda options, metric: None  # (options, metric) -> why not

    def name_for(self, stem: str) -> str:
        return self.filename.format(stem=stem)

    def open(self, staging: Any, stem: str, context: OutputContext) -> OutputWriter:
        """The writer, on staged names (a :class:`~vda.outputs.writers.Staging`) for the file and its sidecar."""
        path = staging.path(self.name_for(stem))
        sidecar = staging.path(self.sidecar.format(stem=stem)) if self.sidecar else None
        return self.writer(path, context, sidecar)


MP4_BYTES_PER_PIXEL = 0.2  # H.264 at CRF 18 on busy content, a generous estimate (depth previews take far less)

OUTPUTS: Registry[OutputFormat] = Registry("output")
OUTPUTS.register("npz", OutputFormat("{stem}_depths.npz", NpzWriter, default=True, bytes_per_pixel=lambda o: 4.0), help="depths [N, H, W] float32, fps")
OUTPUTS.register("vis", OutputFormat("{stem}_vis.mp4", PreviewWriter, default=True, bytes_per_pixel=lambda o: MP4_BYTES_PER_PIXEL), help="colour-mapped preview")
OUTPUTS.register("src", OutputFormat("{stem}_src.mp4", SourceWriter, takes_frames=True, bytes_per_pixel=lambda o: MP4_BYTES_PER_PIXEL), help="the decoded frames")
OUTPUTS.register("png16", OutputFormat("{stem}_depths_png16", Png16Writer, bytes_per_pixel=lambda o: 2.0), help="16-bit PNGs plus scale.json")
OUTPUTS.register(
    "exr",
    OutputFormat("{stem}_depths_exr", ExrWriter, bytes_per_pixel=lambda o: 4.0, requires=("OpenEXR", "exr")),
    help="float32 OpenEXR per frame, channel Z",
)
OUTPUTS.register(
    "ply",
    OutputFormat(
        "{stem}_ply",
        PlyWriter,
        takes_frames=True,
        bytes_per_pixel=lambda o: (15.0 + 3.0) / o.ply_stride**2,  # the points plus their colours' scratch file
        requires=("plyfile", "ply"),
        check=_needs_metric,
    ),
    help="metric models: coloured point cloud per frame",
)
OUTPUTS.register(
    "depth_video",
    OutputFormat("{stem}_depth16.mkv", DepthVideoWriter, bytes_per_pixel=lambda o: 2.0, sidecar="{stem}_depth16.json"),
    help="lossless 16-bit FFV1 depth video plus its range in a .json",
)

# Options of the output group that are not formats: (name, type, default, help).
OUTPUT_OPTIONS = (
    ("grayscale", bool, False, "grayscale preview instead of inferno"),
    ("progress", bool, True, "progress bar on stderr"),
    ("overwrite", bool, False, "replace existing results for an input instead of refusing (one video) or skipping it (a folder)"),
    ("preset", str, DEFAULT_PRESET, "libx264 preset of the preview and source copy: faster encodes, larger files"),
    ("vis_normalize", str, "global", "preview colours: global (min/max of the video, second pass) or running (live)"),
    ("vis_span", int, 30, "vis_normalize=running: frames of the exponential moving average of the range"),
    ("focal_length_x", float, DEFAULT_FOCAL_LENGTH, "ply: horizontal focal length in pixels"),
    ("focal_length_y", float, DEFAULT_FOCAL_LENGTH, "ply: vertical focal length in pixels"),
    ("ply_stride", int, 1, "ply: keep every n-th pixel in both directions"),
)


def _output_config() -> type:
    formats = [(r.name, bool, field(default=r.value.default, metadata={"help": r.help})) for r in OUTPUTS.records()]
    options = [(name, kind, field(default=default, metadata={"help": text})) for name, kind, default, text in OUTPUT_OPTIONS]
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


def check_outputs(options: Any, metric: bool) -> None:
    """Refuse, in one line and before any work, outputs that cannot be written: a format that cannot take
    this depth, a missing optional package, an option out of range."""
    check_vis_normalize(options.vis_normalize, options.vis_span)
    for name in enabled_formats(options):
        fmt = OUTPUTS.get(name)
        reason = fmt.check(options, metric)
        if reason is not None:
            raise ConfigError(reason)
        if fmt.requires is not None:
            module, extra = fmt.requires
            try:
                importlib.import_module(module)
            except ImportError:
                raise ConfigError(
                    f"output.{name}=true needs the {module} package: pip install 'vda[{extra}]'"
                ) from None
    if options.ply and options.ply_stride < 1:
        raise ConfigError(f"output.ply_stride={options.ply_stride} keeps no pixel; use 1 (every pixel) or more")


def output_bytes_per_frame(options: Any, height: int, width: int) -> dict[str, int]:
    """Estimated bytes per frame of each enabled output (the free-disk check)."""
    return {name: int(OUTPUTS.get(name).bytes_per_pixel(options) * height * width) for name in enabled_formats(options)}


def enabled_formats(options: Any) -> list[str]:
    return [r.name for r in OUTPUTS.records() if getattr(options, r.name, False)]


def output_names(stem: str) -> dict[str, str]:
    """File (or folder) name of every format for an input named ``stem``."""
    return {r.name: r.value.name_for(stem) for r in OUTPUTS.records()}


__all__ = [
    "OUTPUTS",
    "OUTPUT_OPTIONS",
    "DepthVideoWriter",
    "ExrWriter",
    "NpzWriter",
    "OutputConfig",
    "OutputContext",
    "OutputFormat",
    "OutputWriter",
    "PlyWriter",
    "Png16Writer",
    "PreviewWriter",
    "SourceWriter",
    "check_outputs",
    "enabled_formats",
    "finish_outputs",
    "output_bytes_per_frame",
    "output_names",
]
