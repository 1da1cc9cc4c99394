"""Stream-mode benchmark: per-frame latency, cached vs re-projected keys/values, stream vs offline, memory.

Not a test. Measurements, all in one process on one decoded clip, modes interleaved in every repeat (so
that load from other processes hits them alike; the best repeat is the least disturbed):

1. **Per-frame latency** of :class:`vda.depth.stream.StreamingDepth` with cached key/value projections and with
   the 32 context slots re-projected every step (the rule as published): p50/p90 of the step times.
2. **Stream vs offline wall time**: the whole clip through stream mode and through the offline windowed
   engine (:class:`vda.depth.WindowedDepth`, encoder-feature cache on).
3. **Depth gap** between stream and offline outputs (AbsRel, δ1 with offline as reference), and between
   the two stream paths (should be rounding only).
4. **Peak RSS vs length**: fresh subprocesses stream ``--rss-frames`` and 10x as many generated frames
   (never held in memory, network input ``--rss-input-size``); the peak resident set size over the
   streaming loop (model build excluded) should not grow with length.

Weights are seeded random (speed does not depend on weight values; the depth gap on random weights only
shows the harness works, the published figure is ScanNet δ1 0.926 offline -> 0.836 stream).

    python -m benchmarks.bench_stream                    # 320x240, 66 frames, input 140, vits, cpu
    python -m benchmarks.bench_stream --threads 1        # on a shared CPU (README, "Stream mode")
    python -m benchmarks.bench_stream --device cuda --input-size 518 --width 1280 --height 720

The pytest-benchmark cases ``test_stream_steps[cached|direct]`` time a short stream at ``--bench-size``
(group "stream"), so the comparison is smoke-run with the other suites.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vda.video.synthetic import synthetic_clip
from vda.bench.agreement import compare, rel_l2
from benchmarks.cli import clip_parser, load_clip, report_header
from vda import build_model
from vda.depth import WindowedDepth
from vda.runtime.device import resolve_device, synchronize
from vda.runtime.memory import MemoryTracker, rss_mb
from vda.runtime.timing import LatencyStats
from vda.depth.stream import StreamingDepth

MODES = {"cached": True, "direct": False}


def moving_frames(count: int, height: int, width: int):
    """Generated RGB frames, one at a time (a long stream never sits in memory)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for t in range(count):
        r = 127 + 100 * np.sin((x + 4 * t) / 23.0)
        g = 127 + 100 * np.cos((y - 3 * t) / 17.0)
        b = 127 + 80 * np.sin((x + y + 2 * t) / 31.0)
        yield np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def run_stream(model, frames, input_size: int, cached: bool) -> tuple[float, list[float], np.ndarray]:
    """(wall seconds, per-step milliseconds, depth [N, H, W]) of one stream over ``frames``."""
    stream = StreamingDepth(model, input_size=input_size, cached_projections=cached)
    steps, depth = [], []
    synchronize(model.device)
    t0 = time.perf_counter()
    for frame in frames:
        depth.append(stream.step(frame))
        steps.append(stream.last_step_s * 1000.0)
    seconds = time.perf_counter() - t0
    return seconds, steps, np.stack(depth)


def run_offline(model, frames, input_size: int) -> tuple[float, np.ndarray]:
    engine = WindowedDepth(model, input_size=input_size)
    synchronize(model.device)
    t0 = time.perf_counter()
    chunks = [d.cpu() for d in engine.run(iter(frames))]
    synchronize(model.device)
    return time.perf_counter() - t0, torch.cat(chunks).numpy()


@pytest.fixture(scope="module")
def short_clip() -> list[np.ndarray]:
    return list(moving_frames(16, 64, 96))


@pytest.mark.benchmark(group="stream")
@pytest.mark.parametrize("mode", list(MODES), ids=list(MODES))
def test_stream_steps(benchmark, bench_settings, short_clip, mode):
    s = bench_settings
    model = build_model(s.encoders[0], device=s.device, precision=s.precision.value, checkpoint="random")
    seconds, steps, depth = benchmark.pedantic(
        run_stream, args=(model, short_clip, s.size, MODES[mode]), rounds=3, iterations=1
    )
    assert depth.shape == (16, 64, 96) and np.isfinite(depth).all()
    assert len(steps) == 16 and sum(steps) / 1000.0 <= seconds


def speed(args, clip: Path) -> dict:
    device, model, info, frames = load_clip(args, clip)
    run_stream(model, frames[:8], args.input_size, True)  # warm-up (allocator, kernels)
    run_offline(model, frames[:8], args.input_size)
    walls: dict[str, list[float]] = {"cached": [], "direct": [], "offline": []}
    steps: dict[str, list[list[float]]] = {"cached": [], "direct": []}
    depth = {}
    for _ in range(args.repeats):
        for mode, cached in MODES.items():
            seconds, step_ms, depth[mode] = run_stream(model, frames, args.input_size, cached)
            walls[mode].append(seconds)
            steps[mode].append(step_ms)
        seconds, depth["offline"] = run_offline(model, frames, args.input_size)
        walls["offline"].append(seconds)
    best = {mode: min(values) for mode, values in walls.items()}
    # per-step figures from each mode's least disturbed repeat
    latency = {mode: LatencyStats.from_samples(runs[walls[mode].index(best[mode])]) for mode, runs in steps.items()}
    gap = compare(depth["cached"], depth["offline"])
    return {
        **report_header(args, clip, len(frames), info, device),
        "threads": torch.get_num_threads(),
        "wall_s": {mode: [round(v, 3) for v in values] for mode, values in walls.items()},
        "step_ms": {m: {"p50": round(s.p50, 2), "p90": round(s.p90, 2), "mean": round(s.mean, 2)} for m, s in latency.items()},
        "step_p50_direct_over_cached": round(latency["direct"].p50 / latency["cached"].p50, 3),
        "wall_direct_over_cached_best": round(best["direct"] / best["cached"], 3),
        "wall_stream_over_offline_best": round(best["cached"] / best["offline"], 3),
        "wall_stream_over_offline_median": round(
            statistics.median(walls["cached"]) / statistics.median(walls["offline"]), 3
        ),
        "stream_vs_offline_absrel": round(gap.absrel, 4),
        "stream_vs_offline_delta1": round(gap.delta1, 4),
        "cached_vs_direct_rel_l2": rel_l2(depth["cached"], depth["direct"]),
    }


def rss_worker(args) -> None:
    """Stream ``args.rss_worker`` generated frames and print the stream's peak RSS as JSON.

    The peak is taken over the streaming loop only (model build excluded): sampled RSS, or the process's
    ``ru_maxrss`` when that rose inside the loop.
    """
    device = resolve_device(args.device)
    model = build_model(args.encoder, device=device, precision=args.precision, checkpoint="random")
    stream = StreamingDepth(model, input_size=args.rss_input_size)
    frames = moving_frames(args.rss_worker, args.height, args.width)
    stream.step(next(frames))
    after_first = rss_mb()
    t0 = time.perf_counter()
    with MemoryTracker(device, interval_s=0.02) as memory:
        for frame in frames:
            stream.step(frame)
    result = {
        "frames": stream.frames,
        "stream_peak_rss_mb": round(memory.details["rss_peak_mib"], 1),
        "rss_after_first_frame_mb": round(after_first, 1),
        "rss_end_mb": round(rss_mb(), 1),
        "state_mb": round(stream.state_bytes / 2**20, 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps(result))


def peak_rss(args, frames: int) -> dict:
    cmd = [
        sys.executable, "-m", "benchmarks.bench_stream", "--rss-worker", str(frames),
        "--width", str(args.width), "--height", str(args.height), "--rss-input-size", str(args.rss_input_size),
        "--encoder", args.encoder, "--device", args.device, "--precision", args.precision, "--threads", str(args.threads),
    ]  # fmt: skip
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = clip_parser(__doc__.split("\n\n")[0], frames=66, size=(320, 240), input_size=140, precision="fp32", repeats=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--rss-frames", type=int, default=50, help="length of the short stream; the long one is 10x")
    parser.add_argument("--rss-input-size", type=int, default=70, help="network input size of the memory runs")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-worker", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.rss_worker:
        rss_worker(args)
        return

    report = {"torch": torch.__version__}
    if not args.skip_speed:
        with tempfile.TemporaryDirectory(prefix="vda-bench-stream-") as tmp:
            clip = args.video or synthetic_clip(Path(tmp) / "clip.mp4", args.frames, args.height, args.width, fps=30)
            report["speed"] = speed(args, clip)
        print(json.dumps(report["speed"], indent=2), flush=True)
    if not args.skip_rss:
        short, long = peak_rss(args, args.rss_frames), peak_rss(args, 10 * args.rss_frames)
        report["rss"] = {"short": short, "long": long, "ratio": round(long["stream_peak_rss_mb"] / short["stream_peak_rss_mb"], 3)}
        print(json.dumps(report["rss"], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
