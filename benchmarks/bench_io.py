"""I/O benchmark: what writing the outputs costs on top of the model, before and after the pipelined run.

Not a test. Each measurement runs in a fresh worker process that imports ``vda`` from a given checkout
(``PYTHONPATH=<root>``), so the code of this branch and a baseline checkout of the same layout (``--baseline DIR``, the
commit this branch started from, exported with ``git archive``) are measured by the same script, alternately,
in one command; the best of ``--repeats`` is kept (other processes only ever add time).

Per checkout:

* ``depth_only_s``: decode + model + host copy of the depth, nothing written (the floor);
* ``default_src_s``: a run with the default outputs (npz + preview) plus the source copy; ``ratio`` is it over
  ``depth_only_s`` (target <= 1.2);
* ``write_s``: write seconds on the model's critical path (``default_src_s - depth_only_s``), and the same
  with every output (``all_write_s``, png16 too); ``stage_write_s`` is what the run itself reports;
* ``colormap_ms``: preview colour mapping per 720p frame (``vda.video.writer.colorize``);
* ``stub_fps_720p`` / ``stub_fps_1080p``: frames/s with :class:`vda.bench.no_model.NoModel` (no network,
  the I/O ceiling) and the default outputs;
* ``rss_short_mb`` / ``rss_long_mb``: peak RSS of a stub run on a clip and on one 5x longer.

Clips are generated (moving colour patterns, H.264) unless ``--video`` is given; weights are seeded random.

    git archive <commit> | tar -x -C /tmp/vda-base       # the baseline checkout (once)
    python benchmarks/bench_io.py --baseline /tmp/vda-base --repeats 2
    python benchmarks/bench_io.py --video /work/shared/samples/tokyo_walk.mp4 --frames 60

The pytest-benchmark cases (group "io") time the colour map and a stub-model run, pipelined and sequential,
at ``--bench-size``; ``--benchmark-disable`` smoke-runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from vda.bench.no_model import NoModel
from vda.depth.process import process_video
from vda.factory import build_model
from vda.depth.settings import InferSettings
from vda.outputs.formats import OutputConfig

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- shared helpers
def process(model, info, out: Path, input_size: int, pipelined: bool = True, **outputs):
    """``process_video`` with only ``outputs`` on."""
    values = {"npz": False, "vis": False, "progress": False, **outputs}
    settings = InferSettings(input_size=input_size, pipelined=pipelined)
    return process_video(model, info, out, settings, OutputConfig(**values))


def timed_run(model, info, workdir: Path, input_size: int, **outputs):
    """Wall seconds of ``process_video`` (fresh output directory, removed after) and its result."""
    out = Path(tempfile.mkdtemp(dir=workdir))
    t0 = time.perf_counter()
    result = process(model, info, out, input_size, **outputs)
    seconds = time.perf_counter() - t0
    for path in out.iterdir():
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        else:
            path.unlink()
    out.rmdir()
    return seconds, result


def depth_only(model, info, input_size: int) -> float:
    """Decode + model + host copy, nothing written."""
    from vda.depth import WindowedDepth
    from vda.runtime.device import synchronize
    from vda.video import VideoReader

    t0 = time.perf_counter()
    for depth in WindowedDepth(model, input_size=input_size).run(iter(VideoReader(info))):
        depth.float().cpu().numpy()
    synchronize(model.device)
    return time.perf_counter() - t0


def previous_colorize(depth: np.ndarray, d_min: float, d_max: float, lut: np.ndarray) -> np.ndarray:
    """The colour mapping before this branch (per 16-frame chunk of the store), for an in-process ratio."""
    span = d_max - d_min
    scale = 255.0 / span if span > 0 else 0.0
    return lut[np.clip((depth - d_min) * scale, 0, 255).astype(np.uint8)]


def colormap_ms(frames: int = 32, height: int = 720, width: int = 1280, rounds: int = 5) -> tuple[float, float]:
    """Colour mapping ms per frame: as the checkout's preview does it (``Colorizer`` per frame into one buffer
    where it exists, else ``colorize`` per 16-frame chunk), and the previous implementation, interleaved."""
    from vda.video import writer

    depth = np.random.default_rng(0).uniform(0.5, 50.0, (frames, height, width)).astype(np.float32)
    lut = writer.inferno_lut()

    def current() -> None:
        if hasattr(writer, "Colorizer"):
            colorizer, image = writer.Colorizer(0.5, 50.0, lut), np.empty((height, width, 3), np.uint8)
            for frame in depth:
                colorizer(frame, image)
        else:
            for start in range(0, frames, 16):
                writer.colorize(depth[start : start + 16], 0.5, 50.0, lut)

    def previous() -> None:
        for start in range(0, frames, 16):
            previous_colorize(depth[start : start + 16], 0.5, 50.0, lut)

    best = {current: float("inf"), previous: float("inf")}
    for _ in range(rounds):
        for fn in best:
            t0 = time.perf_counter()
            fn()
            best[fn] = min(best[fn], time.perf_counter() - t0)
    return best[current] / frames * 1000.0, best[previous] / frames * 1000.0


# ---------------------------------------------------------------- worker: one checkout, one pass
def worker(args) -> dict:
    import torch

    from vda.video import probe

    workdir = Path(args.workdir)
    report: dict = {"vda": str(Path(__import__("vda").__file__).parent.parent), "threads": torch.get_num_threads()}
    if args.part == "rss":
        info = probe(Path(args.clip), max_res=args.max_res)
        timed_run(NoModel(), info, workdir, args.input_size, npz=True, vis=True)
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return report
    report["colormap_ms"], report["colormap_previous_ms"] = colormap_ms()
    stub = NoModel()
    for label, clip, max_res in (("720p", args.clip_720, 1280), ("1080p", args.clip_1080, 1920)):
        info = probe(Path(clip), max_res=max_res)
        seconds, result = timed_run(stub, info, workdir, args.input_size, npz=True, vis=True)
        report[f"stub_fps_{label}"] = result.frames / seconds
    if args.skip_model:
        return report
    model = build_model(args.encoder, device=args.device, precision=args.precision, checkpoint="random")
    info = probe(Path(args.clip), max_res=args.max_res, max_len=args.frames)
    depth_only(model, probe(Path(args.clip), max_res=args.max_res, max_len=32), args.input_size)  # warm-up
    report["depth_only_s"] = depth_only(model, info, args.input_size)
    report["default_src_s"], result = timed_run(
        model, info, workdir, args.input_size, npz=True, vis=True, src=True
    )
    report["stage_write_s"] = result.stage_seconds["write"]
    if "after_model_s" in result.extra:  # this branch: the second pass, the only write on the model's path
        report["after_model_s"] = result.extra["after_model_s"]
    report["all_s"], result = timed_run(
        model, info, workdir, args.input_size, npz=True, vis=True, src=True, png16=True
    )
    report["all_stage_write_s"] = result.stage_seconds["write"]
    if "after_model_s" in result.extra:
        report["all_after_model_s"] = result.extra["after_model_s"]
    return report


SPAWN_SKIP = {"baseline", "json", "repeats", "worker", "workdir", "video", "rss_frames", "stub_frames", "part"}


def spawn(root: Path, part: str, args, workdir: Path, **extra) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", part, "--workdir", str(workdir)]
    for key, value in {**vars(args), **extra}.items():
        if key in SPAWN_SKIP or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            cmd += [flag] if value else []
        else:
            cmd += [flag, str(value)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=workdir)
    if done.returncode:
        raise RuntimeError(f"worker for {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """Best of the repeats: the minimum of times, the maximum of rates; derived ratios from those."""
    best: dict = {"vda": runs[0]["vda"]}
    for key in dict.fromkeys(key for run in runs for key in run):
        if key in {"vda", "threads"}:
            continue
        values = [run[key] for run in runs if key in run]
        best[key] = round(max(values) if key.startswith("stub_fps") else min(values), 3)
    if "depth_only_s" in best:
        best["ratio_default_src"] = round(best["default_src_s"] / best["depth_only_s"], 3)
        best["write_s"] = round(best["default_src_s"] - best["depth_only_s"], 3)
        best["all_write_s"] = round(best["all_s"] - best["depth_only_s"], 3)
        best["ratio_all"] = round(best["all_s"] / best["depth_only_s"], 3)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="checkout root to compare against (measured alternately)")
    parser.add_argument("--video", type=Path, help="clip for the model runs (default: a generated 720p clip)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the model runs")
    parser.add_argument("--stub-frames", type=int, default=120, help="frames of the stub clips (720p and 1080p)")
    parser.add_argument("--rss-frames", type=int, default=60, help="short clip of the RSS check; the long is 5x")
    parser.add_argument("--input-size", type=int, default=196)
    parser.add_argument("--max-res", type=int, default=InferSettings.max_res)
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-model", action="store_true", help="only the colour map and the stub runs")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--worker", choices=["main", "rss"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--clip-720", help=argparse.SUPPRESS)
    parser.add_argument("--clip-1080", help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.part = args.worker
        print(json.dumps(worker(args)))
        return

    from vda.video.synthetic import synthetic_clip  # the clips are made here, with this checkout

    roots = {"after": ROOT} | ({"before": args.baseline.resolve()} if args.baseline else {})
    with tempfile.TemporaryDirectory(prefix="vda-bench-io-") as tmp:
        workdir = Path(tmp)
        clip = args.video or synthetic_clip(workdir / "model.mp4", args.frames, 720, 1280, fps=30)
        clip_720 = synthetic_clip(workdir / "stub720.mp4", args.stub_frames, 720, 1280, fps=30)
        clip_1080 = synthetic_clip(workdir / "stub1080.mp4", args.stub_frames, 1080, 1920, fps=30)
        runs: dict[str, list[dict]] = {label: [] for label in roots}
        for repeat in range(args.repeats):
            for label, root in (roots.items() if repeat % 2 == 0 else reversed(roots.items())):
                runs[label].append(
                    spawn(root, "main", args, workdir, clip=clip, clip_720=clip_720, clip_1080=clip_1080)
                )
                print(f"repeat {repeat} {label}: {json.dumps(runs[label][-1])}", file=sys.stderr, flush=True)
        report = {label: summarise(values) for label, values in runs.items()}
        short = synthetic_clip(workdir / "short.mp4", args.rss_frames, 720, 1280, fps=30)
        long = synthetic_clip(workdir / "long.mp4", 5 * args.rss_frames, 720, 1280, fps=30)
        for label, root in roots.items():
            for name, path in (("short", short), ("long", long)):
                rss = spawn(root, "rss", args, workdir, clip=path)["peak_rss_mb"]
                report[label][f"rss_{name}_mb"] = round(rss, 1)
    report["settings"] = {
        "clip": str(args.video or f"generated 1280x720, {args.frames} frames"),
        "stub_frames": args.stub_frames,
        "rss_frames": [args.rss_frames, 5 * args.rss_frames],
        "input_size": args.input_size,
        "encoder": args.encoder,
        "device": args.device,
        "precision": args.precision,
        "repeats": args.repeats,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


# ---------------------------------------------------------------- pytest-benchmark cases
@pytest.mark.benchmark(group="io")
def test_io_colormap(benchmark, bench_settings):
    from vda.video.writer import colorize, inferno_lut

    side = bench_settings.size
    depth = np.random.default_rng(0).uniform(0.5, 50.0, (16, side, side)).astype(np.float32)
    image = benchmark(colorize, depth, 0.5, 50.0, inferno_lut())
    assert image.shape == (16, side, side, 3) and image.dtype == np.uint8


@pytest.fixture(scope="module")
def io_clip(tmp_path_factory, bench_settings) -> Path:
    from vda.video.synthetic import synthetic_clip

    side = bench_settings.size
    return synthetic_clip(tmp_path_factory.mktemp("io") / "io.mp4", 40, side, 2 * side, fps=30)


@pytest.mark.benchmark(group="io")
@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sequential"])
def test_io_stub_run(benchmark, bench_settings, io_clip, tmp_path, pipelined):
    from vda.video import probe

    info = probe(io_clip)
    runs = iter(range(1_000_000))

    def run():
        out = tmp_path / str(next(runs))
        out.mkdir()
        return process(NoModel(bench_settings.device), info, out, bench_settings.size, pipelined, npz=True, vis=True, src=True)

    result = benchmark.pedantic(run, rounds=3, iterations=1)
    assert result.frames == 40


if __name__ == "__main__":
    main()
