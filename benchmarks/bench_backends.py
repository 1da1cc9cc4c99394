"""Runtime backends side by side: torch eager vs torch.compile vs ONNX Runtime vs OpenVINO, fp32 and bf16.

Not a test. For every (backend, precision) that can run here, in one process and interleaved (repeat r
runs every configuration once before repeat r+1; the best of the repeats is kept, since other processes
only ever add time):

1. one 32-frame window through ``runner(x)`` at network input 140x252 (vits);
2. the whole offline engine (:class:`vda.depth.WindowedDepth`, feature cache on) on a generated clip
   (70 frames of 252x140, input_size 140);

and reports seconds, speed-up against torch eager fp32 (time of torch fp32 / time of the configuration),
the first call's seconds (graph export + conversion + compilation + one window, from an empty graph
cache), and the relative L2 distance of the depth to torch eager fp32's. Weights are seeded random.

The same comparison at a tiny size runs under pytest-benchmark as ``test_backend_window[<backend>]``
(group "backends window"; compile is left to ``__main__``: its first call takes minutes on a CPU).

    python -m benchmarks.bench_backends                       # the table of the README, "Backends"
    python -m benchmarks.bench_backends --backends torch,openvino --precisions fp32 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vda import backends
from vda.backends import BackendConfig
from vda.errors import BackendUnavailableError
from vda import build_model
from vda.depth import WindowedDepth
from vda.depth.preprocess import Preprocessor
from vda.runtime.device import synchronize

# The default and the graph backends (compile is left to __main__: its first call takes minutes on a CPU).
PYTEST_BACKENDS = tuple(r.name for r in backends.BACKENDS.records() if r.name == BackendConfig.name or r.value.whole_windows)


def generated_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """Moving colour patterns, RGB uint8 [H, W, 3] (in memory: no decoding in the timings)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(count):
        r = 127 + 100 * np.sin((x + 4 * t) / 23.0)
        g = 127 + 100 * np.cos((y - 3 * t) / 17.0)
        b = 127 + 80 * np.sin((x + y + 2 * t) / 31.0)
        frames.append(np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8))
    return frames


def window_input(frames: list[np.ndarray], input_size: int, device: torch.device) -> torch.Tensor:
    """The first 32 frames preprocessed as the engine does: [1, 32, 3, h, w]."""
    return Preprocessor(frames[0].shape[:2], input_size, device)(frames[:32]).unsqueeze(0)


def time_window(runner, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    synchronize(runner.device)
    start = time.perf_counter()
    with torch.inference_mode():
        depth = runner(x)
    synchronize(runner.device)
    return time.perf_counter() - start, depth.cpu()


def time_engine(runner, frames: list[np.ndarray], input_size: int) -> tuple[float, torch.Tensor]:
    engine = WindowedDepth(runner, input_size=input_size)
    synchronize(runner.device)
    start = time.perf_counter()
    depth = torch.cat([d.cpu() for d in engine.run(iter(frames))])
    synchronize(runner.device)
    return time.perf_counter() - start, depth


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def graph_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDA_CACHE_DIR", str(tmp_path_factory.mktemp("vda-cache")))
        yield


@pytest.mark.benchmark(group="backends window")
@pytest.mark.parametrize("backend", PYTEST_BACKENDS)
def test_backend_window(benchmark, bench_settings, graph_cache, backend):
    s = bench_settings
    model = build_model(s.encoders[0], device=s.device, checkpoint="random")
    runner = backends.create(backend, model)
    x = torch.randn(1, 32, 3, s.size, s.size, generator=torch.Generator().manual_seed(0)).to(s.device)
    time_window(runner, x)  # builds the graphs
    _, depth = benchmark.pedantic(time_window, args=(runner, x), rounds=3, iterations=1)
    with torch.inference_mode():
        reference = model(x).cpu()
    assert rel_l2(depth, reference) <= 1e-5


def compare(args) -> dict:
    frames = generated_frames(args.frames, args.height, args.width)
    configs, skipped = {}, {}
    for precision in args.precisions:
        for name in args.backends:
            model = build_model(args.encoder, device=args.device, precision=precision, checkpoint="random")
            try:
                configs[(name, precision)] = backends.create(name, model)
            except BackendUnavailableError as exc:
                skipped[f"{name}/{precision}"] = str(exc)
    x = window_input(frames, args.input_size, next(iter(configs.values())).device)
    rows = {}
    for key, runner in configs.items():  # first call: graphs built from an empty cache, plus one window
        seconds, _ = time_window(runner, x)
        rows[key] = {"first_call_s": seconds, "build_s": runner.build_s, "window": [], "engine": []}
    outputs = {}
    for _ in range(args.repeats):
        for key, runner in configs.items():
            seconds, window_depth = time_window(runner, x)
            rows[key]["window"].append(seconds)
            engine_seconds, engine_depth = time_engine(runner, frames, args.input_size)
            rows[key]["engine"].append(engine_seconds)
            outputs[key] = (window_depth, engine_depth)
    base = (BackendConfig.name, "fp32")
    report = []
    for key, row in rows.items():
        window, engine = min(row["window"]), min(row["engine"])
        report.append({
            "backend": key[0],
            "precision": key[1],
            "window_s": round(window, 3),
            "window_speedup": round(min(rows[base]["window"]) / window, 3),
            "engine_s": round(engine, 3),
            "engine_speedup": round(min(rows[base]["engine"]) / engine, 3),
            "first_call_s": round(row["first_call_s"], 2),
            "build_s": round(row["build_s"], 2),
            "rel_l2_window": rel_l2(outputs[key][0], outputs[base][0]),
            "rel_l2_engine": rel_l2(outputs[key][1], outputs[base][1]),
            "window_all_s": [round(v, 3) for v in row["window"]],
            "engine_all_s": [round(v, 3) for v in row["engine"]],
        })
    return {"rows": report, "unavailable": skipped}


def markdown(report: dict) -> str:
    lines = [
        "| backend | precision | window s | window speed-up | engine s | engine speed-up | first call s "
        "| rel L2 window | rel L2 engine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['backend']} | {r['precision']} | {r['window_s']:.3f} | {r['window_speedup']:.2f}x "
            f"| {r['engine_s']:.3f} | {r['engine_speedup']:.2f}x | {r['first_call_s']:.1f} "
            f"| {r['rel_l2_window']:.1e} | {r['rel_l2_engine']:.1e} |"
        )
    for name, reason in report["unavailable"].items():
        lines.append(f"| {name.replace('/', ' | ')} | unavailable: {reason} |||||||")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(backends.BACKENDS), help="comma-separated backend names")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated precisions")
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=70, help="length of the generated clip")
    parser.add_argument("--height", type=int, default=140)
    parser.add_argument("--width", type=int, default=252)
    parser.add_argument("--input-size", type=int, default=140, help="network input: 140x252 for 252x140 frames")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    with tempfile.TemporaryDirectory(prefix="vda-bench-backends-") as cache:
        os.environ["VDA_CACHE_DIR"] = cache  # first calls include the export
        report = compare(args)
    report |= {"torch": torch.__version__, "threads": torch.get_num_threads(), "args": vars(args) | {"json": None}}
    print(markdown(report), flush=True)
    print(json.dumps(report, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
