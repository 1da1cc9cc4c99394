"""Reusable video processing: a probed video in, depth files out (no config parsing, no tracking).

:func:`process_video` is what ``run_infer.py`` runs for each input (through :mod:`vda.infer.single`) and
what the ``pipeline`` benchmark scenario times. Outputs are staged under hidden names and renamed only when
all are complete; on any failure they are removed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np
import torch
from tqdm import tqdm

from vda.depth.engine import EngineStats, WindowedDepth
from vda.depth.scenes import scene_threshold
from vda.outputs.formats import OUTPUTS, OutputContext, OutputWriter, check_outputs, enabled_formats, finish_outputs
from vda.outputs.writers import DepthStore, Staging, scratch_path, write_errors
from vda.runtime.allocator import allocator_scope
from vda.runtime.threads import BackgroundWriter, Prefetcher
from vda.runtime.transfer import HostCopy, PendingCopy
from vda.depth.windows import WINDOW
from vda.runtime.memory import MemoryTracker
from vda.runtime.timing import STAGES, StageTimes, since_process_start
from vda.video.reader import VideoInfo, VideoReader

logger = logging.getLogger(__name__)

DECODE_AHEAD = WINDOW  # frames decoded ahead of the model
SRC_AHEAD = WINDOW  # frames queued for the source copies
DEPTH_AHEAD = 1  # windows of depth queued for the scratch file (81 MB each at 720p)


@dataclass
class InferResult:
    input: Path
    outputs: list[Path]
    frames: int
    seconds: float
    stage_seconds: dict[str, float]
    stats: EngineStats
    peak_memory: dict[str, float]
    run_id: Optional[str] = None
    where: Optional[str] = None  # where the run was tracked and the URL of its runs table
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _frames(reader: Iterable[np.ndarray], times: StageTimes, copy: Optional[Callable[[np.ndarray], None]]) -> Iterator[np.ndarray]:
    """Decoded frames, the decode time charged to ``decode``; each frame also goes to ``copy`` (the source copies)."""
    frames = iter(reader)
    try:
        while True:
            with times.stage("decode"):
                frame = next(frames, None)
            if frame is None:
                return
            if copy is not None:
                copy(frame)
            yield frame
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # closes the container in the thread that decoded


def process_video(
    model: torch.nn.Module,
    info: VideoInfo,
    output_dir: Path,
    settings: Any,
    output: Any,
    frames: Optional[Iterable[np.ndarray]] = None,
    engine: Optional[Callable[[StageTimes], Any]] = None,
    stream: bool = False,
) -> InferResult:
    """Run the offline algorithm over ``info``'s video and write the outputs ``output`` enables.

    ``frames`` and ``engine`` replace the video reader and the offline engine (another mode, see
    :mod:`vda.depth.modes`): ``info`` is then any clip with ``path``, ``stem``, ``width``, ``height``, ``fps``
    and ``estimated_frames``, and ``engine(times)`` makes the engine. ``stream``: the depth comes from a stream
    (outputs that need a range fix it from the first frames instead of waiting for the end).

    ``settings``: an :class:`~vda.infer.config.InferSettings` (``input_size``, ``feature_cache``,
    ``pipelined``, ``sync_stages``, ``allocator``: the host allocator while the model runs); ``output``: an
    :class:`~vda.outputs.formats.OutputConfig`. Pipelined (the default), frames are decoded in a producer thread
    and the depth maps (appended to the scratch file) and the source copies are written in consumer threads,
    behind bounded queues, so the model's thread waits only for frames it needs;
    the ``decode`` and ``write`` stage seconds are then those threads' busy time. The second pass (npz, preview,
    png16 ...) runs after the last window, with a progress bar each; ``live`` writers (a running-range preview,
    a stream's depth video) take each final map as it is appended to the store instead.
    """
    check_outputs(output, model.metric)

    def copy_source(frame: np.ndarray) -> None:  # in the source-copy thread
        with src_times.stage("write"):
            for writer in copies:
                writer.add_frame(frame)

    def append_depth(depth: PendingCopy) -> None:  # in the depth-store thread
        with store_times.stage("write"):
            maps = depth.wait()
            store.append(maps)
            for writer in live:
                writer.add_depth(maps)

    ahead = settings.pipelined
    times = StageTimes(device=model.device, sync=settings.sync_stages)  # the model's thread
    decode_times, store_times, src_times = StageTimes(), StageTimes(), StageTimes()  # one per I/O thread
    staging = Staging(output_dir)
    scratch = scratch_path(output_dir, info.stem)
    if engine is None:
        engine = WindowedDepth(model, settings.input_size, settings.feature_cache, times, scene_threshold(settings))
    else:
        engine = engine(times)
    context = OutputContext(info, output, model.metric, stream)
    host_copy = HostCopy(model.device)
    src_queue = BackgroundWriter(SRC_AHEAD if ahead else 0, name="vda-src-copy")
    store_queue = BackgroundWriter(DEPTH_AHEAD if ahead else 0, name="vda-depth-store")
    reader = frames if frames is not None else VideoReader(info)
    writers: list[OutputWriter] = []
    copies: list[OutputWriter] = []  # the writers that take the decoded frames
    live: list[OutputWriter] = []  # the writers that take the depth as it comes
    store: Optional[DepthStore] = None
    first_depth_s: Optional[float] = None
    own_runtime = getattr(model, "foreign_memory", False)  # a graph runtime, with memory outside torch's
    started = time.perf_counter()
    try:
        with MemoryTracker(model.device, other_runtimes=own_runtime) as memory, write_errors(output_dir):
            store = DepthStore(scratch, info.height, info.width)
            for name in enabled_formats(output):
                fmt = OUTPUTS.get(name)
                writers.append(fmt.open(staging, info.stem, context))
                if fmt.takes_frames:
                    copies.append(writers[-1])
                if writers[-1].live:
                    live.append(writers[-1])
            decoded = _frames(reader, decode_times, functools.partial(src_queue.submit, copy_source) if copies else None)
            with tqdm(
                total=info.estimated_frames, unit="frame", desc=info.stem, disable=not output.progress, dynamic_ncols=True, leave=None
            ) as bar, Prefetcher(decoded, DECODE_AHEAD if ahead else 0, name="vda-decode") as frames, allocator_scope(
                settings.allocator, own_runtime
            ):
                for depth in engine.run(frames):
                    if first_depth_s is None:
                        first_depth_s = since_process_start()
                        logger.info("first depth maps %.2f s after the process started", first_depth_s)
                    store_queue.submit(append_depth, host_copy.start(depth))
                    bar.update(len(depth))
            model_done = time.perf_counter()
            src_queue.close()
            store_queue.close()
            with times.stage("write"):
                store.close()
                finish_outputs(writers, store, output.progress, info.stem)
                outputs = staging.commit()
    except BaseException:
        src_queue.abort()
        store_queue.abort()
        for writer in writers:
            writer.abort()
        staging.abort()
        raise
    finally:
        if store is not None:
            with contextlib.suppress(OSError):  # after a full disk the flush fails again; the file goes anyway
                store.close()
        scratch.unlink(missing_ok=True)
    finished = time.perf_counter()
    for thread_times in (decode_times, store_times, src_times):
        for stage, seconds in thread_times.seconds.items():
            times.add(stage, seconds)
    return InferResult(
        input=info.path,
        outputs=outputs,
        frames=engine.stats.frames,
        seconds=finished - started,
        stage_seconds={stage: times.seconds.get(stage, 0.0) for stage in STAGES},
        stats=engine.stats,
        peak_memory={"peak_memory_mib": memory.peak_mb, **memory.details},
        extra={
            "depth_min": store.min,
            "depth_max": store.max,
            "after_model_s": finished - model_done,
            "first_depth_s": first_depth_s,
            "frames_skipped": getattr(reader, "frames_skipped", 0),
            "scene_cuts": engine.stats.scene_cuts,
            **engine.metrics(),
        },
    )


__all__ = ["InferResult", "process_video"]
