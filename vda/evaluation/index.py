"""The published extracted layout: an index json, the frames and ground truth it lists, predictions beside it.

``<root>/<dataset>/<dataset>_video.json`` is ``{dataset: [{scene: [{image, gt_depth, factor[, K, pose]}]}]}``
with paths relative to the json's folder (upstream's ``benchmark/dataset_extract`` scripts write it). Ground
truth is a 16-bit PNG (or ``.npy``) divided by ``factor``; a prediction is ``<dir>/<dataset>/<image path with
.npy>``, as upstream's ``infer.py`` writes it. Every check raises :class:`~vda.errors.DatasetError` in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
from PIL import Image

from vda.errors import DatasetError


@dataclass(frozen=True)
class Frame:
    """One listed frame: its image (as written in the index and resolved), ground truth, factor, camera."""

    image: str
    image_path: Path
    gt_path: Path
    factor: float
    K: Optional[np.ndarray] = None
    pose: Optional[np.ndarray] = None  # camera-to-world, 4x4


@dataclass(frozen=True)
class Scene:
    name: str
    frames: tuple[Frame, ...]


def _matrix(value: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise DatasetError(f"{what} has shape {array.shape}, expected {shape}")
    return array


def _frame(entry: Any, folder: Path, where: str, cameras: bool) -> Frame:
    if not isinstance(entry, dict) or not {"image", "gt_depth", "factor"} <= entry.keys():
        raise DatasetError(f"{where}: each frame needs image, gt_depth and factor")
    K = pose = None
    if cameras:
        if "K" not in entry or "pose" not in entry:
            raise DatasetError(f"{where}: the tae protocol needs K and pose for every frame; this frame has none")
        K = _matrix(entry["K"], (3, 3), f"{where}: K")
        pose = _matrix(entry["pose"], (4, 4), f"{where}: pose")
    return Frame(entry["image"], folder / entry["image"], folder / entry["gt_depth"], float(entry["factor"]), K, pose)


def read_index(path: Path, dataset: str, cameras: bool = False) -> list[Scene]:
    """The scenes of ``dataset`` in ``path`` in the index's order (``cameras``: K and pose are required)."""
    if not path.is_file():
        raise DatasetError(f"index {path} does not exist (scenario.json overrides its path)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"index {path} is not readable json: {exc}") from None
    if not isinstance(data, dict) or dataset not in data:
        keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise DatasetError(f"index {path} has no {dataset!r} entry (found: {keys})")
    if not isinstance(data[dataset], list):
        raise DatasetError(f"index {path}: {dataset!r} must be a list of {{scene: [frames]}}")
    scenes = []
    for group in data[dataset]:
        if not isinstance(group, dict):
            raise DatasetError(f"index {path}: each item of {dataset!r} must be {{scene: [frames]}}")
        for name, entries in group.items():
            if not isinstance(entries, list) or not entries:
                raise DatasetError(f"index {path}: scene {name!r} lists no frames")
            where = f"index {path}, scene {name!r}"
            scenes.append(Scene(str(name), tuple(_frame(e, path.parent, where, cameras) for e in entries)))
    if not scenes:
        raise DatasetError(f"index {path} lists no scene for {dataset!r}")
    return scenes


def check_files(scene: Scene, scored: Iterable[Frame], images: bool) -> None:
    """The ground truth of every scored frame (and every listed image, when ``images``) exists."""
    paths = [frame.image_path for frame in scene.frames] if images else []
    for path in paths + [frame.gt_path for frame in scored]:
        if not path.is_file():
            raise DatasetError(f"scene {scene.name!r} lists {path}, which does not exist")


def prediction_path(root: Path, dataset: str, frame: Frame) -> Path:
    """``<root>/<dataset>/<image with .npy>``, named exactly as upstream's infer.py and eval.py name it."""
    return root / dataset / frame.image.replace(".jpg", ".npy").replace(".png", ".npy")


def load_image(path: Path) -> np.ndarray:
    """RGB ``uint8`` ``[H, W, 3]``."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def load_gt(frame: Frame) -> np.ndarray:
    """Ground-truth depth: the file's values divided by ``factor`` (numpy's dtype rules, as upstream)."""
    if frame.gt_path.suffix == ".npy":
        raw = np.load(frame.gt_path)
    else:
        with Image.open(frame.gt_path) as image:
            raw = np.array(image)
    if raw.ndim != 2:
        raise DatasetError(f"ground truth {frame.gt_path} has shape {raw.shape}; expected one channel")
    return raw / frame.factor


def load_prediction(path: Path) -> np.ndarray:
    """A saved prediction as float32 ``[H, W]``."""
    array = np.load(path).astype(np.float32)
    if array.ndim != 2:
        raise DatasetError(f"prediction {path} has shape {array.shape}; expected [H, W]")
    return array


__all__ = ["Frame", "Scene", "check_files", "load_gt", "load_image", "load_prediction", "prediction_path", "read_index"]
