"""Where predictions come from: files on disk in the published layout, or a depth engine run on each scene.

:class:`SavedPredictions` reads ``<dir>/<dataset>/<image with .npy>`` (upstream's ``infer.py`` layout, or any
other method's output written the same way). :class:`EnginePredictions` runs every frame a scene lists, in
order, as RGB through an engine (``engine.run(frames)`` yields depth ``[k, H, W]`` at the image size: the
offline windows or the stream rule of ``run_infer.py``), optionally saves each map in that layout, and
yields the scored ones; images are read lazily, so one scene's frames are never all in memory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from vda.errors import DatasetError
from vda.evaluation.evaluate import Plan
from vda.evaluation.index import Frame, Scene, load_image, load_prediction, prediction_path


def missing_predictions(plan: Plan, root: Path) -> int:
    """How many scored frames have no prediction file; a one-line error when none has one."""
    scored = [frame for scene in plan.scenes for frame in plan.scored(scene)]
    missing = sum(not prediction_path(root, plan.dataset, frame).is_file() for frame in scored)
    if missing == len(scored):
        example = prediction_path(root, plan.dataset, scored[0])
        raise DatasetError(
            f"scenario.predictions={root}: none of the {len(scored)} scored frames has a prediction (e.g. {example})"
        )
    return missing


class SavedPredictions:
    """Predictions already on disk; a missing file yields None (counted by the scoring)."""

    def __init__(self, root: Path, dataset: str) -> None:
        self.root = root
        self.dataset = dataset

    def __call__(self, scene: Scene, scored: list[Frame]) -> Iterator[Optional[np.ndarray]]:
        for frame in scored:
            path = prediction_path(self.root, self.dataset, frame)
            yield load_prediction(path) if path.is_file() else None


class EnginePredictions:
    """Predictions of ``engine`` over each scene; ``frames`` and ``seconds`` add up the inference passes
    (reading the images, the network and the alignment; not the scoring nor the saving)."""

    def __init__(self, engine: Any, dataset: str, save_dir: Optional[Path] = None) -> None:
        self.engine = engine
        self.dataset = dataset
        self.save_dir = save_dir
        self.frames = 0
        self.seconds = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def _save(self, frame: Frame, depth: np.ndarray) -> None:
        path = prediction_path(self.save_dir, self.dataset, frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, depth)

    def __call__(self, scene: Scene, scored: list[Frame]) -> Iterator[Optional[np.ndarray]]:
        wanted = {id(frame) for frame in scored}
        images = (load_image(frame.image_path) for frame in scene.frames)
        listed = iter(scene.frames)
        chunks = iter(self.engine.run(images))
        while True:
            start = time.perf_counter()
            chunk = next(chunks, None)
            if chunk is None:
                break
            depth = chunk.float().cpu().numpy()
            self.seconds += time.perf_counter() - start
            self.frames += len(depth)
            for one in depth:
                frame = next(listed)
                if self.save_dir is not None:
                    self._save(frame, one)
                if id(frame) in wanted:
                    yield one


__all__ = ["EnginePredictions", "SavedPredictions", "missing_predictions"]
