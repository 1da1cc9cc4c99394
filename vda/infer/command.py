"""What ``run_infer.py`` runs: one input, or (offline mode) a dataset of videos; lines to print and an exit status."""

from __future__ import annotations

from dataclasses import dataclass

from vda.infer.single import run_inference
from vda.infer.config import InferConfig
from vda.infer.dataset import is_dataset, run_dataset
from vda.depth.modes import MODES


@dataclass
class Outcome:
    lines: list[str]
    exit_status: int = 0


def infer(cfg: InferConfig) -> Outcome:
    """Run the inference command for typed settings (``vda.config.to_object`` of the Hydra config)."""
    if MODES.get(cfg.mode.name).datasets and is_dataset(cfg.input):
        summary = run_dataset(cfg)
        return Outcome([summary.line(), *([summary.where] if summary.where else [])], 1 if summary.failed else 0)
    result = run_inference(cfg)
    head = f"{result.input.name}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} frames/s)"
    return Outcome([head, *(f"  {path}" for path in result.outputs), *([result.where] if result.where else [])])


__all__ = ["Outcome", "infer"]
