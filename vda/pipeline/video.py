"""Reusable video processing: a probed video in, depth files out (no config parsing, no tracking).

:func:`process_video` is what ``run_infer.py`` runs for each input (through :mod:`vda.pipeline.command`) and
what the ``pipeline`` benchmark scenario times. Outputs are staged under hidden names and renamed only when
all are complete; on any failure they are removed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from tqdm import tqdm

from vda.pipeline.engine import EngineStats, WindowedDepth
from vda.pipeline.formats import OUTPUTS, OutputContext, OutputWriter, enabled_formats
from vda.pipeline.outputs import DepthStore, Staging
from vda.runtime.memory import MemoryTracker
from vda.runtime.timing import STAGES, StageTimes
from vda.video.reader import VideoInfo, VideoReader


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _frames(reader: VideoReader, times: StageTimes, copies: list[OutputWriter]) -> Iterator[np.ndarray]:
    """Decoded frames, the decode time charged to ``decode`` and the source copies to ``write``."""
    frames = iter(reader)
    while True:
        with times.stage("decode"):
            frame = next(frames, None)
        if frame is None:
            return
        if copies:
            with times.stage("write"):
                for writer in copies:
                    writer.add_frame(frame)
        yield frame


def process_video(model: torch.nn.Module, info: VideoInfo, output_dir: Path, settings: Any, output: Any) -> InferResult:
    """Run the offline algorithm over ``info``'s video and write the outputs ``output`` enables.

    ``settings``: an :class:`~vda.pipeline.config.InferSettings` (``input_size``, ``feature_cache``);
    ``output``: an :class:`~vda.pipeline.formats.OutputConfig`.
    """
    times = StageTimes(device=model.device)
    staging = Staging(output_dir)
    scratch = output_dir / f".{info.stem}_depths.scratch-{os.getpid()}.f32"
    engine = WindowedDepth(model, settings.input_size, settings.feature_cache, times)
    context = OutputContext(info, output, model.metric)
    writers: list[OutputWriter] = []
    copies: list[OutputWriter] = []  # the writers that take the decoded frames
    store: Optional[DepthStore] = None
    started = time.perf_counter()
    try:
        with MemoryTracker(model.device) as memory:
            store = DepthStore(scratch, info.height, info.width)
            for name in enabled_formats(output):
                fmt = OUTPUTS.get(name)
                writers.append(fmt.writer(staging.path(fmt.name_for(info.stem)), context))
                if fmt.takes_frames:
                    copies.append(writers[-1])
            with tqdm(
                total=info.estimated_frames,
                unit="frame",
                desc=info.stem,
                disable=not output.progress,
                dynamic_ncols=True,
                leave=None,  # kept alone, cleared when nested under the bar over a dataset's videos
            
            ) as bar:
                for depth in engine.run(_frames(VideoReader(info), times, copies)):
                    with times.stage("write"):
                        store.append(depth.float().cpu().numpy())
                    bar.update(len(depth))
            with times.stage("write"):
                store.close()
                for writer in writers:
                    writer.finish(store)
                outputs = staging.commit()
    except BaseException:
        for writer in writers:
            writer.abort()
        staging.abort()
        raise
    finally:
        if store is not None:
            store.close()
        scratch.unlink(missing_ok=True)
    return InferResult(
        input=info.path,
        outputs=outputs,
        frames=engine.stats.frames,
        seconds=time.perf_counter() - started,
        stage_seconds={stage: times.seconds.get(stage, 0.0) for stage in STAGES},
        stats=engine.stats,
        peak_memory={"peak_memory_mb": memory.peak_mb, **memory.details},
        extra={"depth_min": store.min, "depth_max": store.max},
    )


__all__ = ["InferResult", "process_video"]
