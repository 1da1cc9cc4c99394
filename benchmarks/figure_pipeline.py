"""Offline pipeline figures: the encoder-feature cache against no cache, and peak RSS against video length.

Two measurements, each made of ``pipeline`` scenario jobs (vda/bench/scenarios/pipeline.py, run as run_bench.py
runs them; seeded random weights, a generated clip unless ``--video``):

1. **Feature cache speed-up**: ``scenario.feature_cache=false`` and ``true`` alternately, ``--repeats`` jobs each
   in this process, no outputs but the depth; the ratios of the best and of the median pass seconds, the
   encoder passes, the seconds per stage, and the relative L2 distance between the two depths.
2. **Peak RSS vs length**: one isolated job (a fresh process) on a clip of ``--rss-frames`` and one on a clip
   10x longer, default outputs; the peak resident set size should not grow with length.

    python -m benchmarks.figure_pipeline                     # 640x360, 66 frames, input 196
    python -m benchmarks.figure_pipeline --video clip.mp4 --input-size 518 --device cuda
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.scenario_job import clip_overrides, clip_parser, emit, measure, the_clip
from vda.bench.agreement import rel_l2


def stages(metrics: dict) -> dict:
    """Seconds per stage, from the ``stage_<stage>_s`` metrics."""
    return {k[len("stage_") : -len("_s")]: round(v, 4) for k, v in metrics.items() if k.startswith("stage_") and k.endswith("_s")}


def cache_speedup(args, workdir: Path) -> dict:
    clip = the_clip(args, workdir)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    last = {}
    for _ in range(args.repeats):
        for cache in (False, True):
            kept = workdir / f"cache_{cache}"
            last[cache] = measure(
                "scenario=pipeline", *clip_overrides(args, clip), f"scenario.feature_cache={cache}", "scenario.vis=false",
                f"scenario.keep_outputs={kept}", "job.isolate=false",
            ).metrics  # fmt: skip
            seconds[cache].append(last[cache]["duration_s"])
    depth = {cache: np.load(next((workdir / f"cache_{cache}").glob("*_depths.npz")))["depths"] for cache in seconds}
    best = {cache: min(values) for cache, values in seconds.items()}
    middle = {cache: statistics.median(values) for cache, values in seconds.items()}
    return {
        "seconds_no_cache": [round(v, 3) for v in seconds[False]],
        "seconds_cache": [round(v, 3) for v in seconds[True]],
        "speedup_min": round(best[False] / best[True], 3),
        "speedup_median": round(middle[False] / middle[True], 3),
        "encoder_passes_ratio": round(last[False]["encoded_frames"] / last[True]["encoded_frames"], 3),
        "stages_no_cache": stages(last[False]),
        "stages_cache": stages(last[True]),
        "relative_l2_cache_vs_no_cache": rel_l2(depth[True], depth[False]),
    }


def peak_rss(args, workdir: Path, frames: int) -> dict:
    m = measure("scenario=pipeline", *clip_overrides(args, the_clip(args, workdir, frames)), "job.isolate=true").metrics
    return {
        "frames": int(m["frames"]),
        "peak_rss_mb": round(m["rss_peak_mib"], 1),
        "seconds": round(m["duration_s"], 2),
        "fps": round(m["throughput_fps"], 2),
        "first_call_s": round(m["first_call_s"], 2),
    }


def main() -> None:
    parser = clip_parser(__doc__.split("\n\n")[0], frames=66, size=(640, 360), input_size=196, repeats=5)
    parser.add_argument("--rss-frames", type=int, default=66, help="length of the short clip; the long one is 10x")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vda-figure-pipeline-") as tmp:
        report = {"cache": cache_speedup(args, Path(tmp))}
        if not args.skip_rss:
            short, long = (peak_rss(args, Path(tmp), n) for n in (args.rss_frames, 10 * args.rss_frames))
            report["rss"] = {"short": short, "long": long}
    emit({"settings": vars(args), **report}, args.json)


if __name__ == "__main__":
    main()
