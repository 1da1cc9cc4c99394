"""Backend figures: torch eager vs torch.compile vs ONNX Runtime vs OpenVINO, fp32 and bf16.

For every (backend, precision) that can run here, scenario jobs (run as run_bench.py runs them; seeded random
weights), from an empty graph cache:

1. ``forward``: one 32-frame window at network input ``--height`` x ``--width`` (140x252), ``--repeats`` timed
   calls, the best kept; its ``first_call_s`` is the first call (graph export + conversion + compilation + one
   window);
2. ``pipeline``: the whole offline engine (feature cache on, nothing written) on a generated clip of ``--frames``
   at ``--width`` x ``--height`` (input_size ``--input-size``), one job per repeat, interleaved, the best kept;
3. ``equivalence`` (the default attention only): the window's relative L2 distance to torch eager fp32 (math),
   and the whole run's depth against torch eager fp32's.

Speed-ups are against torch eager fp32 (its time / the configuration's).

    python -m benchmarks.figure_backends                       # the table of docs/performance.md, "Backends"
    python -m benchmarks.figure_backends --backends torch,openvino --precisions fp32 --repeats 5
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.scenario_job import clip_parser, emit, measure, the_clip
from vda.attention import AttentionConfig
from vda.backends import BACKENDS, BackendConfig
from vda.bench.agreement import rel_l2
from vda.bench.command import BenchJobFailed

BASE = (BackendConfig.name, "fp32")


def compare(args, work: Path) -> dict:
    clip = the_clip(args, work)
    configs, skipped, rows = [], {}, {}
    for precision in args.precisions:
        for name in args.backends:
            runtime = [f"backend={name}", f"precision={precision}", f"encoder={args.encoder}", f"device={args.device}"]
            window = [f"scenario.height={args.height}", f"scenario.width={args.width}", "scenario.frames=32"]
            try:
                m = measure(*runtime, "scenario=forward", *window, "scenario.warmup=0", f"scenario.max_runs={args.repeats}",
                            f"scenario.min_runs={args.repeats}", "scenario.min_time_s=0", "job.isolate=false")
                eq = measure(*runtime, "scenario=equivalence", *window, f"scenario.implementations=[{AttentionConfig.name}]",
                             "job.isolate=false")
            except BenchJobFailed as exc:
                skipped[f"{name}/{precision}"] = str(exc)
                continue
            configs.append((name, precision, runtime))
            rows[(name, precision)] = {"window": min(m.samples_ms) / 1000.0, "first_call_s": m.metrics["first_call_s"],
                                       "rel_l2_window": eq.children[0].metrics["equiv_rel_l2"], "engine": []}
    for _ in range(args.repeats):
        for name, precision, runtime in configs:
            kept = work / f"{name}_{precision}"
            engine = measure(*runtime, "scenario=pipeline", f"scenario.input={clip}", f"scenario.input_size={args.input_size}",
                             "scenario.npz=true", "scenario.vis=false", f"scenario.keep_outputs={kept}", "job.isolate=false")
            rows[(name, precision)]["engine"].append(engine.metrics["duration_s"])
    depth = {key: np.load(next((work / f"{key[0]}_{key[1]}").glob("*_depths.npz")))["depths"] for key in rows}
    report = []
    for key, row in rows.items():
        engine = min(row["engine"])
        report.append({
            "backend": key[0], "precision": key[1], "window_s": round(row["window"], 3),
            "window_speedup": round(rows[BASE]["window"] / row["window"], 3), "engine_s": round(engine, 3),
            "engine_speedup": round(min(rows[BASE]["engine"]) / engine, 3), "first_call_s": round(row["first_call_s"], 2),
            "rel_l2_window": row["rel_l2_window"], "rel_l2_engine": rel_l2(depth[key], depth[BASE]),
            "engine_all_s": [round(v, 3) for v in row["engine"]],
        })  # fmt: skip
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
    parser = clip_parser(__doc__.split("\n\n")[0], frames=70, size=(252, 140), input_size=140, repeats=3)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backend names")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated precisions")
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    with tempfile.TemporaryDirectory(prefix="vda-figure-backends-") as tmp:
        os.environ["VDA_CACHE_DIR"] = str(Path(tmp) / "cache")  # first calls include the export
        report = compare(args, Path(tmp))
    print(markdown(report), flush=True)
    emit({"settings": vars(args), **report}, args.json)


if __name__ == "__main__":
    main()
