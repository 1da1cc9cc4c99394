"""The shot-cut detector (``infer.scene_cuts=true``) on its own, on 1280x720 frames whatever ``--bench-size``: its
cost depends on the decoded frame size, and 720p is the workload of its target (under 5 % of the model's time,
measured whole by ``python -m benchmarks.figure_scene_cuts``)."""

from __future__ import annotations

import numpy as np
import pytest

from vda.depth.scenes import SceneCutDetector
from vda.video.synthetic import synthetic_frames


@pytest.fixture(scope="module")
def frames_720p() -> np.ndarray:
    return synthetic_frames(4, 720, 1280)


@pytest.mark.benchmark(group="scene cuts")
def test_scene_cut_detector(benchmark, frames_720p):
    def detect() -> list[bool]:
        detector = SceneCutDetector()
        return [detector(frame) for frame in frames_720p]

    assert not any(benchmark(detect))  # one continuous moving shot
