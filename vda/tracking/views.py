"""The experiments of the two commands as the dashboard shows them: description and preset columns of each, the
metrics a sweep's parent run summarises. An experiment records its command in the tag ``vda.command``, by which
``python -m vda.dashboard`` finds it under any name."""

from __future__ import annotations

from vda.tracking import tags as T
from vda.tracking.store import ExperimentView
from vda.tracking.ui import column

# The first columns of both commands' runs tables: how long, how it ended, and what really ran.
WHAT_RAN = (
    column("attributes", "Duration"),
    column("tags", T.STATUS),
    *(column("params", f"{choice}.resolved") for choice in ("device", "precision", "attention", "backend")),
)

INFER_VIEW = ExperimentView(
    command="run_infer.py",
    description=(
        "Depth runs of `run_infer.py`: one run per video (nested under a dataset's or a multirun's parent run), "
        "named `clip · attention precision`. Metrics: `throughput_fps`, `duration_s`, `peak_memory_mib`, "
        "`stage_<stage>_s`; the artifacts hold `config.yaml` and the depth preview video."
    ),
    columns=(
        *WHAT_RAN,
        column("metrics", "frames"),
        column("metrics", "throughput_fps"),
        column("metrics", "duration_s"),
        column("metrics", "peak_memory_mib"),
        column("metrics", "model_load_s"),
    ),
)
INFER_SUMMARY_METRICS = ("throughput_fps", "duration_s", "peak_memory_mib")

BENCH_VIEW = ExperimentView(
    command="run_bench.py",
    description=(
        "Benchmark jobs of `run_bench.py`: one run per job (nested under its sweep's parent run), named "
        "`attention·precision | scenario encoder device`. Metrics: latency (`latency_ms_p50`...), "
        "`throughput_fps`, `peak_memory_mib`, and the `equiv_*` errors of each attention implementation "
        "(nested runs of an equivalence job), and the accuracy scores `delta1`, `abs_rel`, `rmse`, `tae` of "
        "`scenario=accuracy`. A sweep's parent run holds `report.md` and its charts."
    ),
    columns=(
        *WHAT_RAN,
        column("metrics", "latency_ms_p50"),
        column("metrics", "latency_ms_p90"),
        column("metrics", "throughput_fps"),
        column("metrics", "peak_memory_mib"),
        column("metrics", "first_call_s"),
        column("metrics", "equiv_max_abs_err"),
        column("metrics", "equiv_rel_l2"),
        column("metrics", "delta1"),
        column("metrics", "abs_rel"),
        column("metrics", "tae"),
    ),
)
# Job metrics summarised per configuration on a sweep's parent run.
BENCH_SUMMARY_METRICS = (
    "latency_ms_p50", "latency_ms_p90", "throughput_fps", "peak_memory_mib", "first_call_s", "delta1", "abs_rel", "tae",
)
VIEWS = {view.command: view for view in (INFER_VIEW, BENCH_VIEW)}

__all__ = ["BENCH_SUMMARY_METRICS", "BENCH_VIEW", "INFER_SUMMARY_METRICS", "INFER_VIEW", "VIEWS"]
