"""Stream-mode figures: per-frame latency with cached and re-projected keys/values, stream vs offline, memory.

Made of ``stream`` scenario jobs (vda/bench/scenarios/stream.py, run as run_bench.py runs them; seeded random
weights, a generated clip unless ``--video``), the two paths interleaved in every repeat (the best repeat is the
least disturbed):

1. **Per-frame latency** with cached key/value projections and with the 32 context slots re-projected every
   step (the rule as published, ``scenario.cached_projections=false``): p50/p90/mean of the step times.
2. **Stream vs offline seconds** on the same clip (the offline engine, feature cache on, model only), and the
   depth gap between them (AbsRel, δ1 with offline as reference). That the two stream paths give the same depth
   is a test (tests/test_stream.py).
3. **Peak RSS vs length**: isolated jobs (a fresh process each) stream ``--rss-frames`` and 10x as many frames,
   decoded one at a time, at network input ``--rss-input-size``; the peak should not grow with length.

    python -m benchmarks.figure_stream                    # 320x240, 66 frames, input 140, vits, cpu
    python -m benchmarks.figure_stream --threads 1        # on a shared CPU
    python -m benchmarks.figure_stream --device cuda --input-size 518 --width 1280 --height 720
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.scenario_job import clip_overrides, clip_parser, emit, measure, the_clip
from vda.runtime.timing import LatencyStats

MODES = {"cached": True, "direct": False}


def speed(args, workdir: Path) -> dict:
    overrides = [*clip_overrides(args, the_clip(args, workdir)), "scenario=stream", "job.isolate=false"]
    if args.threads:
        overrides.append(f"job.threads={args.threads}")
    runs: dict[str, list] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode, cached in MODES.items():
            runs[mode].append(measure(*overrides, f"scenario.cached_projections={cached}", f"scenario.vs_offline={cached}"))
    walls = {mode: [sum(r.samples_ms) / 1000.0 for r in results] for mode, results in runs.items()}
    best = {mode: results[values.index(min(values))] for (mode, results), values in zip(runs.items(), walls.values())}
    latency = {mode: LatencyStats.from_samples(result.samples_ms) for mode, result in best.items()}
    ratios = [r.metrics["stream_over_offline_s"] for r in runs["cached"]]
    return {
        "wall_s": {mode: [round(v, 3) for v in values] for mode, values in walls.items()},
        "offline_s": [round(r.metrics["offline_s"], 3) for r in runs["cached"]],
        "step_ms": {m: {"p50": round(s.p50, 2), "p90": round(s.p90, 2), "mean": round(s.mean, 2)} for m, s in latency.items()},
        "step_p50_direct_over_cached": round(latency["direct"].p50 / latency["cached"].p50, 3),
        "wall_direct_over_cached_best": round(min(walls["direct"]) / min(walls["cached"]), 3),
        "wall_stream_over_offline_best": round(min(ratios), 3),
        "wall_stream_over_offline_median": round(statistics.median(ratios), 3),
        "stream_vs_offline_absrel": round(best["cached"].metrics["stream_vs_offline_absrel"], 4),
        "stream_vs_offline_delta1": round(best["cached"].metrics["stream_vs_offline_delta1"], 4),
    }


def peak_rss(args, workdir: Path, frames: int) -> dict:
    clip = the_clip(args, workdir, frames)
    overrides = [*clip_overrides(args, clip), f"scenario.input_size={args.rss_input_size}", "scenario=stream"]
    m = measure(*overrides, "scenario.vs_offline=false", "job.isolate=true").metrics
    return {"frames": frames, "peak_rss_mb": round(m["rss_peak_mib"], 1), "state_mb": round(m["stream_state_mib"], 3)}


def main() -> None:
    parser = clip_parser(__doc__.split("\n\n")[0], frames=66, size=(320, 240), input_size=140, repeats=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (job.threads; 0: torch's default)")
    parser.add_argument("--rss-frames", type=int, default=50, help="length of the short stream; the long one is 10x")
    parser.add_argument("--rss-input-size", type=int, default=70, help="network input size of the memory runs")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    args = parser.parse_args()
    report: dict = {"settings": vars(args)}
    with tempfile.TemporaryDirectory(prefix="vda-figure-stream-") as tmp:
        if not args.skip_speed:
            report["speed"] = speed(args, Path(tmp))
        if not args.skip_rss:
            short, long = (peak_rss(args, Path(tmp), n) for n in (args.rss_frames, 10 * args.rss_frames))
            report["rss"] = {"short": short, "long": long, "ratio": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3)}
    emit(report, args.json)


if __name__ == "__main__":
    main()
