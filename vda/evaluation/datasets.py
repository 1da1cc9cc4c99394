"""The accuracy benchmarks, one record each in :data:`DATASETS`: depth cap, crop and the protocols it offers.

The values are those of the published evaluation (Video-Depth-Anything ``benchmark/eval/eval.py``,
``eval.sh``, ``eval_500.sh``, ``eval_tae.sh``): a new dataset is one :meth:`~vda.registry.Registry.register`
call here. A protocol says which index file it reads, which scenes and frames it scores and how:

* ``short``: the first 90-110 frames of every scene (``eval.sh``, DepthCrafter's setting);
* ``long``: the first 500 frames (``eval_500.sh``);
* ``tae``: ScanNet's temporal alignment error (``eval_tae.sh``): the first 20 scenes, frames [10:180], the
  prediction cropped like the ground truth, K and the camera-to-world pose from the index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from vda.errors import ConfigError
from vda.registry import Registry

PROTOCOLS = ("short", "long", "tae")
SHORT, LONG, TAE = PROTOCOLS


@dataclass(frozen=True)
class Protocol:
    """How one protocol scores a dataset."""

    # Index file in <root>/<dataset>/ (scenario.json replaces it).
    index: str
    # Frames [start:stop] of each scene are scored (all frames are inferred); stop None: to the end.
    start: int = 0
    stop: Optional[int] = None
    # Only the first ``scenes`` scenes in the index's order; None: every scene.
    scenes: Optional[int] = None
    # Temporal alignment error (needs K and pose per frame) instead of AbsRel, RMSE and δ1.
    tae: bool = False
    # Crop the prediction like the ground truth before resizing it (eval_tae.py --hard_crop); otherwise the
    # whole prediction is resized to the cropped ground truth (eval.py).
    crop_prediction: bool = False

    @property
    def frames(self) -> slice:
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class Dataset:
    """One benchmark: depth cap (metres), crop ``(top, bottom, left, right)`` as Python slice bounds, protocols."""

    max_depth: float
    crop: tuple[Optional[int], Optional[int], Optional[int], Optional[int]]
    protocols: dict[str, Protocol] = field(default_factory=dict)

    def protocol(self, name: str, dataset: str) -> Protocol:
        """The record of protocol ``name``; a one-line error for an unknown one or one this dataset lacks."""
        if name not in PROTOCOLS:
            raise ConfigError(f"unknown scenario.protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
        if name not in self.protocols:
            raise ConfigError(
                f"scenario.dataset={dataset} has no {name} protocol in the published evaluation; "
                f"choose one of {', '.join(self.protocols)}"
            )
        return self.protocols[name]

    def crop_slices(self) -> tuple[slice, slice]:
        top, bottom, left, right = self.crop
        return slice(top, bottom), slice(left, right)


def _depth_protocols(name: str, short: Optional[int], long: Optional[int]) -> dict[str, Protocol]:
    protocols = {}
    if short is not None:
        protocols[SHORT] = Protocol(f"{name}_video.json", stop=short)
    if long is not None:
        protocols[LONG] = Protocol(f"{name}_video_500.json", stop=long)
    return protocols


DATASETS: Registry[Dataset] = Registry("scenario.dataset")
DATASETS.register(
    "sintel", Dataset(70.0, (0, 436, 0, 1024), _depth_protocols("sintel", 100, None)), help="MPI Sintel (synthetic)"
)
DATASETS.register(
    "kitti", Dataset(80.0, (0, 374, 0, 1242), _depth_protocols("kitti", 110, 500)), help="KITTI (outdoor driving, LiDAR)"
)
DATASETS.register(
    "bonn", Dataset(10.0, (0, 480, 0, 640), _depth_protocols("bonn", 110, 500)), help="Bonn RGB-D dynamic (indoor)"
)
DATASETS.register(
    "scannet",
    Dataset(
        10.0,
        (8, -8, 11, -11),
        {
            **_depth_protocols("scannet", 90, 500),
            TAE: Protocol("scannet_video_tae.json", start=10, stop=180, scenes=20, tae=True, crop_prediction=True),
        },
    ),
    help="ScanNet (indoor, with camera poses)",
)
DATASETS.register(
    "nyuv2", Dataset(10.0, (45, 471, 41, 601), _depth_protocols("nyuv2", None, 500)), help="NYU Depth v2 (indoor)"
)

__all__ = ["DATASETS", "LONG", "PROTOCOLS", "SHORT", "TAE", "Dataset", "Protocol"]
