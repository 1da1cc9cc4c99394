"""``accuracy``: AbsRel, RMSE and δ1 (or ScanNet's TAE) on the paper's benchmarks, scored exactly as the
published evaluation does, with the inference frames/s of the same job: what a speed choice costs.

    python run_bench.py scenario=accuracy scenario.root=benchmark/datasets scenario.dataset=sintel
    python run_bench.py -m scenario=accuracy scenario.root=... scenario.dataset=sintel,scannet precision=fp32,bf16

Each scene's frames go through ``run_infer.py``'s engine (offline windows, or ``scenario.mode=stream``) with
the run's encoder, precision, attention, backend and device; ``scenario.predictions=DIR`` scores predictions
already on disk instead, without building a model. The weights default to the official checkpoint in this
scenario (scores of random weights mean nothing); the run is tagged ``vda.weights`` with what it used.
Everything is checked before any inference; the library is :mod:`vda.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from vda.bench.result import JobResult
from vda.bench.scenarios.base import SCENARIOS, Scenario, ScenarioConfig
from vda.bench.scenarios.common import build_for
from vda.depth.modes import MODES
from vda.depth.settings import InferSettings
from vda.errors import ConfigError
from vda.evaluation import EnginePredictions, SavedPredictions, evaluate, missing_predictions, plan
from vda.factory import check_mode_backend
from vda.model.dinov2 import PATCH_SIZE as PATCH
from vda.paths import resolve_path
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import Precision
from vda.runtime.timing import StageTimes

PAPER_INPUT_SIZE = InferSettings.input_size  # 518, the paper's setting
WEIGHTS_TAG = "vda.weights"
CSV_ARTIFACT = "sequences.csv"


@dataclass
class AccuracyScenarioConfig(ScenarioConfig):
    """Scores on a published benchmark (see docs/accuracy.md for the datasets and what each number means)."""

    name: str = "accuracy"
    # sintel, kitti, bonn, scannet or nyuv2 (vda.evaluation.datasets)
    dataset: str = "sintel"
    # short (eval.sh), long (eval_500.sh) or tae (eval_tae.sh, scannet)
    protocol: str = "short"
    # The folder holding <dataset>/ as upstream's extraction scripts write it (relative to the launch directory).
    root: Optional[str] = None
    # The index file; null: <root>/<dataset>/<the protocol's index name>.
    json: Optional[str] = None
    # offline (windows, the paper's setting) or stream (the streaming rule of run_infer.py mode=stream)
    mode: str = "offline"
    # Network input size; null: 518 (the paper's setting), reduced for frames wider than 16:9.
    input_size: Optional[int] = None
    # Score predictions already saved in the published layout (<dir>/<dataset>/<image>.npy); no model is built.
    predictions: Optional[str] = None
    # Also write vda's predictions in that layout, so the published scripts can read them.
    save_predictions: Optional[str] = None


def _engine(cfg: Any, device: torch.device, precision: Precision, input_size: int):
    mode = MODES.get(cfg.scenario.mode)
    model = build_for(cfg, device, precision)
    return mode.engine(model, InferSettings(input_size=input_size), mode.schema(), StageTimes())


def run(cfg: Any, device: torch.device, precision: Precision) -> JobResult:
    scenario = cfg.scenario
    scored_only = scenario.predictions is not None
    if scored_only and scenario.save_predictions is not None:
        raise ConfigError("scenario.predictions scores saved predictions; scenario.save_predictions needs inference")
    if not scored_only:
        MODES.get(scenario.mode)
        check_mode_backend(scenario.mode, cfg.backend.name)
    input_size = int(scenario.input_size or PAPER_INPUT_SIZE)
    if input_size < PATCH:
        raise ConfigError(f"scenario.input_size={input_size} is below the patch size {PATCH}; use e.g. 518 (null)")
    root = resolve_path(scenario.root) if scenario.root is not None else None
    index = resolve_path(scenario.json) if scenario.json is not None else None
    chosen = plan(scenario.dataset, scenario.protocol, root, index, images=not scored_only)
    params: dict[str, Any] = {"scenario.index": str(chosen.index)}
    tags: dict[str, str] = {}
    with MemoryTracker(device) as memory:
        if scored_only:
            source_dir = resolve_path(scenario.predictions)
            missing_predictions(chosen, source_dir)
            source = SavedPredictions(source_dir, scenario.dataset)
            tags[WEIGHTS_TAG] = f"predictions:{source_dir}"
        else:
            save_dir = resolve_path(scenario.save_predictions) if scenario.save_predictions is not None else None
            source = EnginePredictions(_engine(cfg, device, precision, input_size), scenario.dataset, save_dir)
            params["scenario.input_size"] = input_size
            tags[WEIGHTS_TAG] = str(cfg.model.checkpoint)
        with torch.inference_mode():
            evaluation = evaluate(chosen, source)
    metrics = {**evaluation.metrics(), "peak_memory_mib": memory.peak_mb, **memory.details}
    if isinstance(source, EnginePredictions):
        metrics.update(throughput_fps=source.fps, inference_s=source.seconds)
    return JobResult(metrics=metrics, params=params, tags=tags, artifacts={CSV_ARTIFACT: evaluation.csv()})


SCENARIOS.register(
    "accuracy",
    Scenario(AccuracyScenarioConfig, run, timed=False, defaults={"model": {"checkpoint": "auto"}}),
    help="AbsRel, RMSE, δ1 or TAE on a published benchmark, with the inference frames/s",
)
