"""Cost of shot-cut detection (``infer.scene_cuts=true``): the detector's seconds against the model's.

Made of ``pipeline`` scenario jobs (vda/bench/scenarios/pipeline.py, run as run_bench.py runs them; seeded random
weights, a generated 1280x720 clip unless ``--video``, depth written to npz, no preview), in this process:
``scenario.scene_cuts=false`` and ``true`` alternately, ``--repeats`` jobs each. The report gives the seconds of
a pass with cuts off and on, the detector's stage seconds (``stage_scene_cuts_s``, the time run_infer.py logs
under the same name) and its share of the model's stages (preprocess, build, encoder, head, align) in the same
job; the target is under 5 % on CPU at input 196.

    python -m benchmarks.figure_scene_cuts                      # 1280x720, 54 frames, input 196, CPU
    python -m benchmarks.figure_scene_cuts --video clip.mp4 --input-size 518 --device cuda
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.scenario_job import clip_overrides, clip_parser, emit, measure, the_clip

MODEL_STAGES = ("preprocess", "build", "encoder", "head", "align")


def model_seconds(metrics: dict) -> float:
    """Seconds per pass in the engine's model stages."""
    return sum(metrics[f"stage_{stage}_s"] for stage in MODEL_STAGES)


def scene_cut_cost(args, workdir: Path) -> dict:
    overrides = [*clip_overrides(args, the_clip(args, workdir)), "scenario=pipeline", "scenario.vis=false", "job.isolate=false"]
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.repeats):
        for cuts in runs:
            runs[cuts].append(measure(*overrides, f"scenario.scene_cuts={cuts}").metrics)
    seconds = {cuts: [m["duration_s"] for m in results] for cuts, results in runs.items()}
    detector = [m["stage_scene_cuts_s"] for m in runs[True]]
    shares = [m["stage_scene_cuts_s"] / model_seconds(m) for m in runs[True]]
    frames = runs[True][0]["frames"]
    return {
        "frames": int(frames),
        "seconds_cuts_off": [round(v, 3) for v in seconds[False]],
        "seconds_cuts_on": [round(v, 3) for v in seconds[True]],
        "on_over_off_min": round(min(seconds[True]) / min(seconds[False]), 3),
        "on_over_off_median": round(statistics.median(seconds[True]) / statistics.median(seconds[False]), 3),
        "detector_s": [round(v, 4) for v in detector],
        "detector_ms_per_frame_min": round(1000 * min(detector) / frames, 3),
        "model_s_cuts_on": [round(model_seconds(m), 3) for m in runs[True]],
        "detector_share_of_model_min": f"{100 * min(shares):.2f} %",
        "detector_share_of_model_median": f"{100 * statistics.median(shares):.2f} %",
        "scene_cuts": int(runs[True][0]["scene_cuts"]),
        "windows_cuts_off_on": [int(runs[False][0]["windows"]), int(runs[True][0]["windows"])],
    }


def main() -> None:
    parser = clip_parser(__doc__.split("\n\n")[0], frames=54, size=(1280, 720), input_size=196, repeats=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vda-figure-scene-cuts-") as tmp:
        report = scene_cut_cost(args, Path(tmp))
    emit({"settings": vars(args), "scene_cuts": report}, args.json)


if __name__ == "__main__":
    main()
