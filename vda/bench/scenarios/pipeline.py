"""``pipeline``: end-to-end frames/s of the video inference, with the seconds spent in each stage.

The model is built and a first (cold) pass over the video gives ``first_call_s``; then ``repeats`` passes are
measured: ``throughput_fps`` is frames over their seconds, ``stage_s_<stage>`` the mean seconds per pass
spent in decode, preprocess, encoder, head, align and write, ``stage_frac_<stage>`` their share.
"""

from __future__ import annotations

import shutil
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from vda.bench.result import JobResult
from vda.bench.scenarios.common import build_for
from vda.errors import ConfigError
from vda.pipeline.run import STAGES, InferResult, process_video, resolve_path
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import Precision
from vda.runtime.timing import time_first_call
from vda.video import VideoWriter, probe

REFERENCE_INPUT_SIZE = 518
CPU_INPUT_SIZE = 196


def synthetic_clip(path: Path, frames: int, height: int, width: int, fps: int, seed: int = 0) -> Path:
    """Smoothly moving colour patterns with a little noise, written as H.264."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with VideoWriter(path, width, height, Fraction(fps)) as writer:
        for t in range(frames):
            image = np.stack(
                [
                    127 + 100 * np.sin((x + 3 * t) / 17.0),
                    127 + 100 * np.cos((y - 2 * t) / 13.0),
                    127 + 80 * np.sin((x + y + t) / 23.0),
                ],
                axis=-1,
            )
            image += rng.normal(0, 6, image.shape)
            writer.write(np.clip(image, 0, 255).astype(np.uint8))
    return path


def _inference_config(scenario: Any, input_size: int) -> Any:
    """The part of ``run_infer.py``'s config that :func:`process_video` reads."""
    return OmegaConf.create(
        {
            "infer": {"input_size": input_size, "feature_cache": bool(scenario.feature_cache)},
            "output": {
                "npz": bool(scenario.npz),
                "vis": bool(scenario.vis),
                "src": False,
                "png16": False,
                "grayscale": False,
                "progress": False,
            },
        }
    )


def run(cfg: Any, device: torch.device, precision: Precision) -> JobResult:
    scenario = cfg.scenario
    if int(scenario.repeats) < 1:
        raise ConfigError(f"scenario.repeats={scenario.repeats}: measure at least one pass (repeats >= 1)")
    input_size = int(scenario.input_size or (CPU_INPUT_SIZE if device.type == "cpu" else REFERENCE_INPUT_SIZE))
    workdir = Path(tempfile.mkdtemp(prefix="vda-bench-pipeline-"))
    try:
        if scenario.input:
            path = resolve_path(scenario.input)
        else:
            path = synthetic_clip(
                workdir / "clip.mp4",
                int(scenario.clip_frames),
                int(scenario.clip_height),
                int(scenario.clip_width),
                int(scenario.clip_fps),
            )
        info = probe(path, max_res=scenario.max_res, target_fps=scenario.target_fps, max_len=scenario.max_len)
        infer_cfg = _inference_config(scenario, input_size)

        def one_pass(model: torch.nn.Module, index: int) -> InferResult:
            out = workdir / f"pass{index}"
            out.mkdir()
            return process_video(model, info, out, infer_cfg)

        with MemoryTracker(device) as memory:

            def load_and_first_pass() -> torch.nn.Module:
                model = build_for(cfg, device, precision)
                one_pass(model, 0)
                return model

            model, first_call_s = time_first_call(load_and_first_pass, device)
            passes = [one_pass(model, i) for i in range(1, int(scenario.repeats) + 1)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    frames = sum(p.frames for p in passes)
    seconds = sum(p.seconds for p in passes)
    stage_s = {stage: sum(p.stage_seconds[stage] for p in passes) / len(passes) for stage in STAGES}
    staged = sum(stage_s.values())
    metrics = {
        "throughput_fps": frames / seconds,
        "first_call_s": first_call_s,
        "peak_mem_mb": memory.peak_mb,
        "pipeline_frames": float(passes[0].frames),
        "pipeline_s_mean": seconds / len(passes),
        "encoded_frames": float(passes[0].stats.encoded_frames),
        **{f"stage_s_{stage}": value for stage, value in stage_s.items()},
        **{f"stage_frac_{stage}": (value / staged if staged > 0 else 0.0) for stage, value in stage_s.items()},
        **{f"mem_{name}": value for name, value in memory.details.items()},
    }
    params = {
        "scenario.input": str(info.path),
        "scenario.input_size": input_size,
        "video.size": f"{info.width}x{info.height}",
        "video.fps": str(info.fps),
    }
    return JobResult(metrics=metrics, params=params)
