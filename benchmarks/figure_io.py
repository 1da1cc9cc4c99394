"""I/O figures: what writing the outputs costs on top of the model, and the I/O ceiling with no network.

Made of ``pipeline`` scenario jobs (vda/bench/scenarios/pipeline.py, run as run_bench.py runs them; seeded random
weights), interleaved over ``--repeats``, the best kept (other processes only ever add time):

* ``depth_only_s``: decode + model + depth, nothing written (the floor);
* ``default_src_s``: the default outputs (npz + preview) plus the source copy; ``ratio_default_src`` is it over
  ``depth_only_s``; ``write_s`` the difference, the write seconds on the model's critical path, and the same with
  every output (``all_s``, ``all_write_s``: png16 too); ``stage_write_s`` and ``after_model_s`` are what the run
  itself reports (its write stage, and the seconds after the model's last window);
* ``stub_fps_720p`` / ``stub_fps_1080p``: frames/s with ``scenario.no_model=true`` (no network: the I/O ceiling)
  and the default outputs;
* ``rss_short_mb`` / ``rss_long_mb``: peak RSS of a stub run (a fresh process) on a clip and on one 5x longer.

The preview colour map alone is a micro-benchmark (``test_io_colormap`` in benchmarks/micro/bench_io.py).

    python -m benchmarks.figure_io --repeats 2
    python -m benchmarks.figure_io --skip-model --repeats 1
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.scenario_job import clip_overrides, clip_parser, emit, measure, the_clip
from vda.video.synthetic import synthetic_clip

# label: outputs of the model runs
MODEL_RUNS = {
    "depth_only": ["scenario.npz=false", "scenario.vis=false"],
    "default_src": ["scenario.src=true"],
    "all": ["scenario.src=true", "scenario.png16=true"],
}
STUB = ["scenario=pipeline", "scenario.no_model=true", "scenario.max_res=-1"]


def run_once(args, clips: dict[str, Path]) -> dict:
    report = {}
    for label, clip in (("720p", clips["720p"]), ("1080p", clips["1080p"])):
        stub = measure(*STUB, f"scenario.input={clip}", "job.isolate=false").metrics
        report[f"stub_fps_{label}"] = stub["throughput_fps"]
    if args.skip_model:
        return report
    for label, outputs in MODEL_RUNS.items():
        m = measure("scenario=pipeline", *clip_overrides(args, clips["model"]), *outputs, "job.isolate=false").metrics
        report[f"{label}_s"] = m["duration_s"]
        report[f"{label}_stage_write_s"] = m["stage_write_s"]
        report[f"{label}_after_model_s"] = m["after_model_s"]
    return report


def best_of(runs: list[dict]) -> dict:
    """The minimum of times, the maximum of rates; derived ratios from those."""
    best = {key: round((max if key.startswith("stub_fps") else min)(run[key] for run in runs), 3) for key in runs[0]}
    if "depth_only_s" in best:
        best["ratio_default_src"] = round(best["default_src_s"] / best["depth_only_s"], 3)
        best["write_s"] = round(best["default_src_s"] - best["depth_only_s"], 3)
        best["all_write_s"] = round(best["all_s"] - best["depth_only_s"], 3)
        best["ratio_all"] = round(best["all_s"] / best["depth_only_s"], 3)
    return best


def main() -> None:
    parser = clip_parser(__doc__.split("\n\n")[0], frames=60, size=(1280, 720), input_size=196, repeats=2)
    parser.add_argument("--stub-frames", type=int, default=120, help="frames of the stub clips (720p and 1080p)")
    parser.add_argument("--rss-frames", type=int, default=60, help="short clip of the RSS check; the long is 5x")
    parser.add_argument("--skip-model", action="store_true", help="only the stub runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vda-figure-io-") as tmp:
        work = Path(tmp)
        clips = {
            "model": the_clip(args, work),
            "720p": synthetic_clip(work / "stub720.mp4", args.stub_frames, 720, 1280, fps=30),
            "1080p": synthetic_clip(work / "stub1080.mp4", args.stub_frames, 1080, 1920, fps=30),
        }
        report = best_of([run_once(args, clips) for _ in range(args.repeats)])
        for name, frames in (("short", args.rss_frames), ("long", 5 * args.rss_frames)):
            clip = the_clip(args, work, frames)
            rss = measure(*STUB, f"scenario.input={clip}", "job.isolate=true").metrics["rss_peak_mib"]
            report[f"rss_{name}_mb"] = round(rss, 1)
    emit({"settings": vars(args), **report}, args.json)


if __name__ == "__main__":
    main()
