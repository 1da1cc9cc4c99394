"""``pipeline``: end-to-end frames/s of the video inference, with the seconds spent in each stage.

The model is built and a first (cold) pass over the video gives ``first_call_s``; then ``repeats`` passes are
measured: ``throughput_fps`` is frames over their seconds, ``stage_<stage>_s`` the mean seconds per pass
spent in decode, preprocess, encoder, head, align and write (and scene_cuts, the shot-cut detector, with
``scenario.scene_cuts=true``, as ``run_infer.py infer.scene_cuts=true`` runs it), ``stage_<stage>_fraction`` their
share; ``windows`` and ``scene_cuts`` count one pass's windows and detected cuts.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from vda.bench.result import JobResult
from vda.bench.scenarios.base import SCENARIOS, ClipScenarioConfig, Scenario
from vda.bench.scenarios.common import build_for, clip_path, memory_tracker
from vda.errors import ConfigError
from vda.depth.scenes import check_threshold
from vda.paths import resolve_path
from vda.depth.settings import InferSettings
from vda.runtime.allocator import Allocator
from vda.outputs.formats import OutputConfig
from vda.bench.no_model import NoModel
from vda.depth.process import InferResult, process_video
from vda.runtime.device import facts
from vda.runtime.precision import Precision
from vda.runtime.timing import STAGES, time_first_call
from vda.video import probe

@dataclass
class PipelineScenarioConfig(ClipScenarioConfig):
    """End-to-end frames/s of the video inference (``run_infer.py``'s pipeline) with the per-stage split."""

    name: str = "pipeline"
    max_len: int = InferSettings.max_len
    target_fps: float = InferSettings.target_fps
    feature_cache: bool = InferSettings.feature_cache
    # Split the video at shot cuts as run_infer.py's infer.scene_cuts does (the detector is the "scene_cuts" stage).
    scene_cuts: bool = InferSettings.scene_cuts
    # The detector's threshold, as infer.scene_threshold.
    scene_threshold: float = InferSettings.scene_threshold
    # Host memory during the model's loop, as infer.allocator (auto, reuse or system).
    allocator: Allocator = InferSettings.allocator
    # Outputs written as run_infer.py does (timed as the "write" stage), deleted after the job.
    npz: bool = True
    vis: bool = True
    src: bool = False
    png16: bool = False
    # Folder (relative to the launch directory) that receives the last pass's outputs; null: none kept.
    keep_outputs: Optional[str] = None
    # Measured passes over the video after the first (cold) pass, which gives first_call_s.
    repeats: int = 1
    # No network (vda.bench.no_model): depth at once: the I/O ceiling (decode, preprocess, write),
    # the most any accelerator can reach on this host.
    no_model: bool = False


def run(cfg: Any, device: torch.device, precision: Precision) -> JobResult:
    scenario = cfg.scenario
    if int(scenario.repeats) < 1:
        raise ConfigError(f"scenario.repeats={scenario.repeats}: measure at least one pass (repeats >= 1)")
    check_threshold(scenario.scene_threshold, "scenario.scene_threshold")
    input_size = int(scenario.input_size or facts(device).bench_input_size)
    workdir = Path(tempfile.mkdtemp(prefix="vda-bench-pipeline-"))
    try:
        info = probe(clip_path(scenario, workdir), max_res=scenario.max_res, target_fps=scenario.target_fps, max_len=scenario.max_len)
        settings = InferSettings(
            input_size=input_size,
            feature_cache=scenario.feature_cache,
            scene_cuts=scenario.scene_cuts,
            scene_threshold=scenario.scene_threshold,
            allocator=scenario.allocator,
        )
        output = OutputConfig(npz=scenario.npz, vis=scenario.vis, src=scenario.src, png16=scenario.png16, progress=False)

        def one_pass(model: torch.nn.Module, index: int) -> InferResult:
            out = workdir / f"pass{index}"
            out.mkdir()
            return process_video(model, info, out, settings, output)

        with memory_tracker(cfg, device) as memory:

            def load_and_first_pass() -> torch.nn.Module:
                model = NoModel(device, bool(cfg.model.metric)) if scenario.no_model else build_for(cfg, device, precision)
                one_pass(model, 0)
                return model

            model, first_call_s = time_first_call(load_and_first_pass, device)
            passes = [one_pass(model, i) for i in range(1, int(scenario.repeats) + 1)]
        if scenario.keep_outputs:
            shutil.copytree(workdir / f"pass{len(passes)}", resolve_path(scenario.keep_outputs), dirs_exist_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    frames = sum(p.frames for p in passes)
    seconds = sum(p.seconds for p in passes)
    stage_s = {stage: sum(p.stage_seconds[stage] for p in passes) / len(passes) for stage in STAGES}
    staged = sum(stage_s.values())
    metrics = {
        "throughput_fps": frames / seconds,
        "first_call_s": first_call_s,
        "peak_memory_mib": memory.peak_mb,
        "frames": float(passes[0].frames),
        "duration_s": seconds / len(passes),
        "after_model_s": sum(p.extra["after_model_s"] for p in passes) / len(passes),
        "encoded_frames": float(passes[0].stats.encoded_frames),
        "windows": float(passes[0].stats.windows),
        "scene_cuts": float(passes[0].stats.scene_cuts),
        **{f"stage_{stage}_s": value for stage, value in stage_s.items()},
        **{f"stage_{stage}_fraction": (value / staged if staged > 0 else 0.0) for stage, value in stage_s.items()},
        **memory.details,
    }
    params = {
        "scenario.input": str(info.path),
        "scenario.input_size": input_size,
        "scenario.no_model": scenario.no_model,
        "video.size": f"{info.width}x{info.height}",
        "video.fps": str(info.fps),
    }
    return JobResult(metrics=metrics, params=params)


SCENARIOS.register(
    "pipeline", Scenario(PipelineScenarioConfig, run), help="end-to-end frames/s of run_infer.py's pipeline, per stage"
)
