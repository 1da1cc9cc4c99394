"""Cost of shot-cut detection (``infer.scene_cuts=true``) against the model, frames per second.

Not a test. The same decoded clip (a generated 1280x720 one unless ``--video``) goes through
:class:`vda.depth.scenes.SceneCutDetector` alone, and through :class:`vda.depth.WindowedDepth` without cuts
(seeded random vits weights: speed does not depend on the weights), in one process; the report gives both
rates and the detector's time as a share of the model's (the target: under 5 % on CPU at input 196).

    python -m benchmarks.bench_scene_cuts                       # 720p, 54 frames, input 196, CPU
    python -m benchmarks.bench_scene_cuts --video clip.mp4 --input-size 518

The pytest-benchmark case ``test_scene_cut_detector`` times the detector on 720p frames (group "scene cuts").
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import clip_parser, load_clip, report_header
from vda.depth.scenes import SceneCutDetector
from vda.depth import WindowedDepth
from vda.runtime.device import synchronize
from vda.video.synthetic import synthetic_clip, synthetic_frames


def detector_seconds(frames: list[np.ndarray]) -> float:
    detector = SceneCutDetector()
    t0 = time.perf_counter()
    for frame in frames:
        detector(frame)
    return time.perf_counter() - t0


def model_seconds(model, frames: list[np.ndarray], input_size: int) -> float:
    engine = WindowedDepth(model, input_size=input_size)
    synchronize(model.device)
    t0 = time.perf_counter()
    for depth in engine.run(iter(frames)):
        depth.cpu()
    synchronize(model.device)
    return time.perf_counter() - t0


def main() -> None:
    parser = clip_parser(__doc__.splitlines()[0], frames=54, size=(1280, 720), input_size=196, precision="fp32", repeats=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vda-bench-cuts-") as workdir:
        clip = args.video or synthetic_clip(Path(workdir) / "clip.mp4", args.frames, args.height, args.width, fps=30)
        device, model, info, frames = load_clip(args, clip)
        report = report_header(args, clip, len(frames), info, device)
        detect = min(detector_seconds(frames) for _ in range(args.repeats))
        network = min(model_seconds(model, frames, args.input_size) for _ in range(args.repeats))
    report.update(
        {
            "detector_fps": round(len(frames) / detect, 1),
            "detector_ms_per_frame": round(1000 * detect / len(frames), 3),
            "model_fps": round(len(frames) / network, 2),
            "detector_share_of_model": f"{100 * detect / network:.2f} %",
        }
    )
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


@pytest.fixture(scope="module")
def frames_720p() -> list[np.ndarray]:
    return list(synthetic_frames(4, 720, 1280))


@pytest.mark.benchmark(group="scene cuts")
def test_scene_cut_detector(benchmark, frames_720p):
    def detect() -> list[bool]:
        detector = SceneCutDetector()
        return [detector(frame) for frame in frames_720p]

    assert not any(benchmark(detect))  # one continuous moving shot


if __name__ == "__main__":
    main()
