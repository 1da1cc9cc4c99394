"""One dataset under one protocol: predictions in, per-sequence and dataset scores out, one scene at a time.

:func:`plan` reads and checks everything before any inference (the dataset and protocol names, the index,
every listed file); :func:`evaluate` then asks a prediction source for each scene's scored frames and keeps
one prepared prediction (float32, at the cropped ground-truth size) in memory at a time: the fit streams over
the frames while each prepared prediction is parked in a scratch file, then a second pass reads them back
with the ground truth for the metrics, so memory does not grow with the scene's length.

Frames that are not scored, and how they are counted:

* ``missing_predictions``: a scored frame without a prediction file (upstream skips it silently): skipped;
* ``nonfinite_frames``: a prediction with any NaN or inf value: skipped like a missing one (upstream would
  turn the whole sequence into NaN), so it neither enters the fit nor the averages; a warning names the count;
* frames whose cropped ground truth has no valid pixel are dropped from the averages (as upstream).

``collapsed_frames`` counts predictions whose range is zero (a black frame); they are scored. A sequence with
no scored frame is listed in the CSV without numbers and left out of the means; ``sequences`` and ``frames``
count what was scored.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from vda.errors import DatasetError
from vda.evaluation.datasets import DATASETS, Dataset, Protocol
from vda.evaluation.index import Frame, Scene, check_files, load_gt, read_index
from vda.evaluation.scoring import EPS, GT_EPS, AffineFit, aligned_depth, frame_metrics, resize_linear, valid_mask
from vda.evaluation.tae import pair_errors

logger = logging.getLogger(__name__)

# (scene, its scored frames) -> one prediction (float32 [H, W]) or None (missing) per scored frame, in order
PredictionSource = Callable[[Scene, list[Frame]], Iterator[Optional[np.ndarray]]]


@dataclass(frozen=True)
class Plan:
    """What to score: the dataset and protocol records and the selected scenes, all checked."""

    dataset: str
    protocol_name: str
    record: Dataset
    protocol: Protocol
    index: Path
    scenes: list[Scene]

    def scored(self, scene: Scene) -> list[Frame]:
        return list(scene.frames[self.protocol.frames])


def plan(dataset: str, protocol: str, root: Optional[Path], index: Optional[Path], images: bool) -> Plan:
    """Check the names, read the index (``index`` or the protocol's file under ``root/dataset``) and check that
    the ground truth of every scored frame, and every listed image when ``images`` (all are inferred), exists."""
    record = DATASETS.get(dataset)
    rule = record.protocol(protocol, dataset)
    if index is None:
        if root is None:
            raise DatasetError("no dataset given: set scenario.root (the folder holding <dataset>/) or scenario.json")
        if not root.is_dir():
            raise DatasetError(f"scenario.root={root} is not a folder")
        index = root / dataset / rule.index
    scenes = read_index(index, dataset, cameras=rule.tae)[: rule.scenes]
    chosen = Plan(dataset, protocol, record, rule, index, scenes)
    for scene in scenes:
        check_files(scene, chosen.scored(scene), images)
    if not any(chosen.scored(scene) for scene in scenes):
        raise DatasetError(f"index {index}: no scene has a frame in the {protocol} protocol's range")
    return chosen


@dataclass
class SequenceScore:
    scene: str
    frames_scored: int = 0
    missing: int = 0
    nonfinite: int = 0
    collapsed: int = 0
    scale: float = math.nan
    shift: float = math.nan
    abs_rel: float = math.nan
    rmse: float = math.nan
    delta1: float = math.nan
    tae: float = math.nan

    @property
    def scored(self) -> bool:
        return self.frames_scored > 0


@dataclass
class Evaluation:
    plan: Plan
    sequences: list[SequenceScore] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, ...]:
        return ("tae",) if self.plan.protocol.tae else ("abs_rel", "rmse", "delta1")

    def metrics(self) -> dict[str, float]:
        """The dataset's scores (unweighted means over scored sequences) and the frame counts."""
        scored = [s for s in self.sequences if s.scored]
        metrics = {name: float(np.mean([getattr(s, name) for s in scored])) if scored else math.nan for name in self.names}
        metrics.update(
            sequences=float(len(scored)),
            frames=float(sum(s.frames_scored for s in self.sequences)),
            missing_predictions=float(sum(s.missing for s in self.sequences)),
            nonfinite_frames=float(sum(s.nonfinite for s in self.sequences)),
            collapsed_frames=float(sum(s.collapsed for s in self.sequences)),
        )
        return metrics

    def csv(self) -> str:
        """One row per sequence in the index's order (empty numbers for a sequence with no scored frame)."""
        columns = ["scene", "frames_scored", "missing", "nonfinite", "collapsed", "scale", "shift", *self.names]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for s in self.sequences:
            values = [getattr(s, c) for c in columns]
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else v for v in values])
        return out.getvalue()


class Parked:
    """Prepared predictions of one scene parked in a scratch folder (deleted on exit), read back in order."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="vda-eval-")
        self.frames: list[Frame] = []

    def __enter__(self) -> "Parked":
        return self

    def __exit__(self, *exc) -> None:
        self._folder.cleanup()

    def __len__(self) -> int:
        return len(self.frames)

    def add(self, frame: Frame, prepared: np.ndarray) -> None:
        np.save(Path(self._folder.name) / f"{len(self.frames)}.npy", prepared)
        self.frames.append(frame)

    def __iter__(self) -> Iterator[tuple[Frame, np.ndarray]]:
        for i, frame in enumerate(self.frames):
            yield frame, np.load(Path(self._folder.name) / f"{i}.npy")


def _prepare(prediction: np.ndarray, gt_shape: tuple[int, int], plan: Plan) -> np.ndarray:
    if plan.protocol.crop_prediction:
        prediction = prediction[plan.record.crop_slices()]
    return np.clip(resize_linear(prediction, gt_shape), EPS, None)


def _cropped_gt(frame: Frame, plan: Plan) -> np.ndarray:
    return load_gt(frame)[plan.record.crop_slices()]


def score_scene(plan: Plan, scene: Scene, predictions: Iterator[Optional[np.ndarray]]) -> SequenceScore:
    """Score one scene from its scored frames' predictions (parked on disk until the scene is scored)."""
    with Parked() as kept:
        return _score_parked(plan, scene, predictions, kept)


def _score_parked(plan: Plan, scene: Scene, predictions: Iterator[Optional[np.ndarray]], kept: Parked) -> SequenceScore:
    score = SequenceScore(scene.name)
    cap = plan.record.max_depth
    fit = AffineFit()
    frames = plan.scored(scene)
    for frame, prediction in zip(frames, predictions, strict=True):
        if prediction is None:
            score.missing += 1
            continue
        if not np.isfinite(prediction).all():
            score.nonfinite += 1
            continue
        if prediction.max() == prediction.min():
            score.collapsed += 1
        gt = _cropped_gt(frame, plan)
        prepared = _prepare(prediction, gt.shape, plan)
        valid = valid_mask(gt, cap)
        fit.add(prepared[valid], 1.0 / (gt[valid].astype(np.float64) + GT_EPS))
        kept.add(frame, prepared)
    if not kept:
        return score
    score.scale, score.shift = fit.solve()
    if plan.protocol.tae:
        _score_tae(plan, score, kept)
    else:
        _score_depth(plan, score, kept)
    return score


def _score_depth(plan: Plan, score: SequenceScore, kept: Parked) -> None:
    cap = plan.record.max_depth
    per_frame = []
    for frame, prepared in kept:
        gt = _cropped_gt(frame, plan)
        metrics = frame_metrics(aligned_depth(prepared, score.scale, score.shift, cap), gt, valid_mask(gt, cap))
        if metrics is not None:
            per_frame.append(metrics)
    score.frames_scored = len(per_frame)
    if per_frame:
        score.abs_rel = float(np.mean([m.abs_rel for m in per_frame]))
        score.rmse = float(np.mean([m.rmse for m in per_frame]))
        score.delta1 = float(np.mean([m.delta1 for m in per_frame]))


def _score_tae(plan: Plan, score: SequenceScore, kept: Parked) -> None:
    if len(kept) < 2:
        return  # upstream divides by 2(N-1) = 0
    cap = plan.record.max_depth
    total = 0.0
    previous_frame, previous = None, None
    for frame, prepared in kept:
        depth = aligned_depth(prepared, score.scale, score.shift, cap)
        if previous is not None:
            total += sum(pair_errors(previous, depth, previous_frame.pose, frame.pose, previous_frame.K))
        previous_frame, previous = frame, depth
    score.frames_scored = len(kept)
    score.tae = total / (2 * (len(kept) - 1)) * 100.0


def evaluate(plan: Plan, source: PredictionSource) -> Evaluation:
    """Score every planned scene, in the index's order, from ``source``'s predictions."""
    evaluation = Evaluation(plan)
    for scene in plan.scenes:
        score = score_scene(plan, scene, source(scene, plan.scored(scene)))
        evaluation.sequences.append(score)
    metrics = evaluation.metrics()
    if metrics["missing_predictions"]:
        logger.warning("%d scored frames have no prediction file; they were skipped", metrics["missing_predictions"])
    if metrics["nonfinite_frames"]:
        logger.warning("%d predictions hold NaN or inf; those frames were skipped", metrics["nonfinite_frames"])
    return evaluation


__all__ = ["Evaluation", "Plan", "PredictionSource", "SequenceScore", "evaluate", "plan", "score_scene"]
