"""Report of an experiment's benchmark runs: a Markdown table and PNG charts, no MLflow UI needed.

    python -m vda.bench.report [--tracking-uri URI] [--experiment vda-bench] [--sweep latest|RUN_ID|all] [--out DIR]

Writes ``DIR/report.md`` (tables: speed and memory, pipeline stages, equivalence, accuracy; a note per run that
did not run) and ``DIR/latency.png``, ``DIR/memory.png``, ``DIR/equivalence.png``, ``DIR/pipeline_stages.png``,
``DIR/accuracy_speed.png`` for the data present. ``--sweep all`` (default) keeps the latest run of each configuration; ``latest`` the jobs
of the most recent sweep; a run id the jobs of that sweep.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from vda.backends import BackendConfig
from vda.bench.scenarios import SCENARIOS
from vda.runtime.timing import STAGES
from vda.tracking.store import default_tracking_uri
from vda.tracking.tags import KIND as KIND_TAG
from vda.tracking.tags import PARENT as PARENT_TAG

MAX_RUNS = 50000
ACCURACY_COUNTS = ("sequences", "frames", "missing_predictions", "nonfinite_frames", "collapsed_frames")
# (metric, axis label) plotted against frames/s, one panel each when a job logged it
ACCURACY_AXES = (("delta1", "δ1 (higher is better)"), ("abs_rel", "AbsRel (lower is better)"), ("tae", "TAE (lower is better)"))
# A chart's legend goes right of the axes, clear of the bars (the saved figure grows to hold it).
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0}


@dataclass
class Row:
    """One job or implementation run, flattened for the report."""

    run_id: str
    parent_id: Optional[str]
    kind: str
    scenario: str
    status: str
    reason: str
    encoder: str
    device: str
    precision: str
    attention: str
    backend: str
    workload: str
    start_time: int
    metrics: dict[str, float] = field(default_factory=dict)
    # What an accuracy job scored with: the weights, or the folder of saved predictions.
    weights: str = ""

    @property
    def config(self) -> str:
        backend = "" if self.backend == BackendConfig.name else f" {self.backend}"
        return f"{self.encoder} {self.device} {self.precision} {self.attention}{backend}"

    def identity(self) -> list[str]:
        """The table columns that say what ran: encoder, device, precision, attention, backend, input, status."""
        return [self.encoder, self.device, self.precision, self.attention, self.backend, self.workload, self.status]

    @property
    def timed(self) -> bool:
        """A job of a timed scenario (its record says so; an unknown scenario counts as timed)."""
        return self.kind == "job" and (self.scenario not in SCENARIOS or SCENARIOS.get(self.scenario).timed)

    @property
    def scored(self) -> bool:
        """A job of the accuracy scenario (it scores a dataset)."""
        return self.kind == "job" and self.scenario == "accuracy"

    @property
    def staged(self) -> bool:
        """Has per-stage seconds (a pipeline-like scenario)."""
        return self.status == "ok" and any(k.startswith("stage_") and k.endswith("_s") for k in self.metrics)

    @property
    def key(self) -> tuple:
        return (self.kind, self.scenario, self.config, self.workload)


def _workload(params: dict[str, str]) -> str:
    if "scenario.dataset" in params:
        source = "saved predictions" if params.get("scenario.predictions", "None") != "None" else params.get("scenario.mode")
        size = params.get("scenario.input_size", "None")
        return f"{params['scenario.dataset']} {params.get('scenario.protocol')} {source}" + (f" @ {size}" if size != "None" else "")
    if "video.size" in params:
        stub = " (no model)" if params.get("scenario.no_model") == "True" else ""
        return f"video {params['video.size']} @ {params.get('scenario.input_size', '?')}{stub}"
    dims = [params.get(f"scenario.{k}", "None") for k in ("batch", "frames", "height", "width")]
    if "None" in dims:  # the job stopped before resolving the device's default window
        return "device default"
    return "{}x{}x3x{}x{}".format(*dims)


def _attention(params: dict[str, str]) -> str:
    """The attention label: ``sdpa:flash`` when a kernel was forced, so runs of different kernels stay apart."""
    name, kernel = params.get("attention.resolved", params.get("attention.name", "?")), params.get("attention.kernel", "auto")
    return f"{name}:{kernel}" if name == "sdpa" and kernel != "auto" else name


def row_from_run(run) -> Row:
    p, t = run.data.params, run.data.tags
    return Row(
        run_id=run.info.run_id,
        parent_id=t.get(PARENT_TAG),
        kind=t.get(KIND_TAG, ""),
        scenario=p.get("scenario.name", t.get("vda.scenario", "")),
        status=t.get("status", "unknown"),
        reason=t.get("status_reason", ""),
        encoder=p.get("encoder.name", "?"),
        device=p.get("device.resolved", p.get("device.name", "?")),
        precision=p.get("precision.resolved", p.get("precision.name", "?")),
        attention=_attention(p),
        backend=p.get("backend.name", BackendConfig.name),
        workload=_workload(p),
        start_time=run.info.start_time or 0,
        metrics=dict(run.data.metrics),
        weights=t.get("vda.weights", p.get("model.checkpoint", "")),
    )


def load_rows(tracking_uri: str, experiment: str, sweep: str = "all") -> list[Row]:
    """Job and implementation runs of ``experiment``, selected as described in the module docstring."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(
            f"error: no experiment {experiment!r} in {tracking_uri}; run run_bench.py first or pass --experiment"
        )
    runs = client.search_runs([found.experiment_id], max_results=MAX_RUNS, order_by=["attributes.start_time DESC"])
    sweeps = [r for r in runs if r.data.tags.get(KIND_TAG) == "sweep"]
    rows = [row_from_run(r) for r in runs if r.data.tags.get(KIND_TAG) in ("job", "implementation")]
    if sweep == "all":
        latest: dict[tuple, Row] = {}
        for row in rows:  # newest first
            latest.setdefault(row.key, row)
        chosen = set(id(r) for r in latest.values())
        jobs = {r.run_id for r in rows if id(r) in chosen and r.kind == "job"}
        # an implementation run belongs with the job it was measured in
        return [
            r
            for r in rows
            if (r.kind == "job" and r.run_id in jobs) or (r.kind == "implementation" and r.parent_id in jobs)
        ]
    if sweep == "latest":
        if not sweeps:
            raise SystemExit(
                f"error: no sweep in experiment {experiment!r}; run run_bench.py -m ... or use --sweep all"
            )
        sweep = sweeps[0].info.run_id
    chosen = _of_sweep(rows, sweep)
    if not chosen:
        raise SystemExit(f"error: no jobs under sweep run {sweep} in experiment {experiment!r}")
    return chosen


def _of_sweep(rows: list[Row], sweep: str) -> list[Row]:
    jobs = {r.run_id for r in rows if r.kind == "job" and r.parent_id == sweep}
    return [r for r in rows if r.run_id in jobs or (r.kind == "implementation" and r.parent_id in jobs)]


def rows_of_sweep(client, experiment_id: str, sweep: str) -> list[Row]:
    """The job and implementation runs of the sweep whose parent run is ``sweep``."""
    runs = client.search_runs([experiment_id], max_results=MAX_RUNS, order_by=["attributes.start_time DESC"])
    return _of_sweep([row_from_run(r) for r in runs if r.data.tags.get(KIND_TAG) in ("job", "implementation")], sweep)


def _num(value: Optional[float], digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _sci(value: Optional[float]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2e}"


def _table(header: Sequence[str], rows: list[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r.scenario, r.encoder, r.device, r.workload, r.precision, r.attention, r.backend))


def markdown(rows: list[Row], charts: Sequence[str], source: str) -> str:
    speed = _sorted([r for r in rows if r.timed])
    stages = [r for r in speed if r.staged]
    equiv = _sorted([r for r in rows if r.kind == "implementation"])
    out = ["# vda benchmark report", "", f"Source: {source}", ""]
    if speed:
        out += ["## Latency, throughput and memory", ""]
        out += _table(
            [
                "scenario",
                "encoder",
                "device",
                "precision",
                "attention",
                "backend",
                "input",
                "status",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "mean ms",
                "frames/s",
                "first call s",
                "peak MiB",
            ],
            [
                [
                    r.scenario,
                    *r.identity(),
                    _num(r.metrics.get("latency_ms_p50")),
                    _num(r.metrics.get("latency_ms_p90")),
                    _num(r.metrics.get("latency_ms_p99")),
                    _num(r.metrics.get("latency_ms_mean")),
                    _num(r.metrics.get("throughput_fps"), 2),
                    _num(r.metrics.get("first_call_s"), 2),
                    _num(r.metrics.get("peak_memory_mib"), 0),
                ]
                for r in speed
            ],
        )
        out.append("")
    if stages:
        out += ["## Pipeline: seconds per pass in each stage", ""]
        out += _table(
            ["configuration", "input", *STAGES],
            [[r.config, r.workload, *(_num(r.metrics.get(f"stage_{s}_s"), 2) for s in STAGES)] for r in stages],
        )
        out.append("")
    if equiv:
        out += ["## Equivalence against math in fp32 (same weights and input)", ""]
        out += _table(
            ["encoder", "device", "precision", "attention", "backend", "input", "status", "max abs err", "rel L2", "AbsRel", "δ1"],
            [
                [
                    *r.identity(),
                    _sci(r.metrics.get("equiv_max_abs_err")),
                    _sci(r.metrics.get("equiv_rel_l2")),
                    _sci(r.metrics.get("equiv_absrel")),
                    _num(r.metrics.get("equiv_delta1"), 4),
                ]
                for r in equiv
            ],
        )
        out.append("")
    scored = _sorted([r for r in rows if r.scored])
    if scored:
        out += ["## Accuracy (AbsRel, RMSE, TAE: lower is better; δ1: higher is better)", ""]
        out += _table(
            [
                "encoder",
                "device",
                "precision",
                "attention",
                "backend",
                "dataset, protocol, mode @ size",
                "status",
                "weights",
                "AbsRel",
                "RMSE",
                "δ1",
                "TAE",
                "frames/s",
                "sequences",
                "frames",
                "missing",
                "non-finite",
                "collapsed",
            ],
            [
                [
                    *r.identity(),
                    r.weights,
                    _num(r.metrics.get("abs_rel"), 4),
                    _num(r.metrics.get("rmse"), 4),
                    _num(r.metrics.get("delta1"), 4),
                    _num(r.metrics.get("tae"), 3),
                    _num(r.metrics.get("throughput_fps"), 2),
                    *(_num(r.metrics.get(k), 0) for k in ACCURACY_COUNTS),
                ]
                for r in scored
            ],
        )
        out.append("")
    failed = [r for r in _sorted(speed) + equiv + scored if r.status != "ok"]
    if failed:
        out += ["## Runs that did not produce numbers", ""]
        out += [f"- {r.scenario} {r.config} {r.workload}: **{r.status}** — {r.reason}" for r in failed]
        out.append("")
    if charts:
        out += ["## Charts", ""] + [f"![{Path(c).stem}]({c})" for c in charts] + [""]
    return "\n".join(out)


def _barh(ax, labels: list[str], values: list[float], xlabel: str, value_format: str = "") -> None:
    """Horizontal bars, top to bottom in ``labels`` order; each bar labelled with its value when ``value_format``."""
    bars = ax.barh(range(len(values)), values, color="#4c72b0")
    if value_format:
        ax.bar_label(bars, [format(v, value_format) for v in values], padding=3, fontsize=8)
        ax.set_xlim(0, max(values) * 1.15)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)


def charts(rows: list[Row], out_dir: Path) -> list[str]:
    """Write the PNG charts for the data present; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[str] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(name)

    def height(n: int) -> float:
        return 1.2 + 0.35 * n

    forward = _sorted([r for r in rows if r.timed and r.status == "ok" and "latency_ms_p50" in r.metrics])
    if forward:
        labels = [f"{r.config} {r.workload}" for r in forward]
        fig, ax = plt.subplots(figsize=(9, height(len(forward))))
        p50 = [r.metrics["latency_ms_p50"] for r in forward]
        _barh(ax, labels, p50, "latency per window, ms (bar: p50, whisker: p90, dot: p99)")
        p90 = [r.metrics["latency_ms_p90"] - v for r, v in zip(forward, p50, strict=True)]
        ax.errorbar(p50, range(len(p50)), xerr=[[0] * len(p50), p90], fmt="none", ecolor="black", capsize=3)
        ax.plot([r.metrics["latency_ms_p99"] for r in forward], range(len(p50)), "k.", markersize=5)
        ax.set_title("forward latency")
        save(fig, "latency.png")
    measured = _sorted([r for r in rows if r.kind == "job" and r.status == "ok" and "peak_memory_mib" in r.metrics])
    if measured:
        fig, ax = plt.subplots(figsize=(9, height(len(measured))))
        _barh(
            ax,
            [f"{r.scenario} {r.config} {r.workload}" for r in measured],
            [r.metrics["peak_memory_mib"] for r in measured],
            "peak memory, MiB (cuda: allocated; mps: allocated; cpu: RSS)",
            ".0f",
        )
        ax.set_title("peak memory")
        save(fig, "memory.png")
    equiv = _sorted([r for r in rows if r.kind == "implementation" and r.status == "ok"])
    if equiv:
        fig, ax = plt.subplots(figsize=(9, height(2 * len(equiv))))
        backend = lambda r: "" if r.backend == BackendConfig.name else f" {r.backend}"  # noqa: E731
        labels = [f"{r.attention} {r.precision}{backend(r)} vs math fp32 ({r.encoder} {r.device}, {r.workload})" for r in equiv]
        tiny = 1e-12  # exact agreement would vanish on a log axis
        for offset, (metric, name) in enumerate((("equiv_max_abs_err", "max abs err"), ("equiv_rel_l2", "rel L2"))):
            values = [max(r.metrics.get(metric, math.nan), tiny) for r in equiv]
            ax.barh([i * 2.5 + offset for i in range(len(equiv))], values, label=name)
        ax.set_yticks([i * 2.5 + 0.5 for i in range(len(equiv))], labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(f"error against math fp32 (log scale; exact agreement drawn at {tiny:g})")
        ax.legend(**OUTSIDE)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title("output equivalence")
        save(fig, "equivalence.png")
    pipeline = _sorted([r for r in rows if r.timed and r.staged])
    if pipeline:
        fig, ax = plt.subplots(figsize=(9, height(len(pipeline))))
        left = [0.0] * len(pipeline)
        for stage in STAGES:
            values = [r.metrics.get(f"stage_{stage}_s", 0.0) for r in pipeline]
            ax.barh(range(len(pipeline)), values, left=left, label=stage)
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_yticks(range(len(pipeline)), [f"{r.config} {r.workload}" for r in pipeline], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("seconds per pass over the video")
        ax.legend(fontsize=8, **OUTSIDE)
        ax.set_title("pipeline stages")
        save(fig, "pipeline_stages.png")
    scored = _sorted([r for r in rows if r.scored and r.status == "ok" and "throughput_fps" in r.metrics])
    panels = [(key, label) for key, label in ACCURACY_AXES if any(key in r.metrics for r in scored)]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
        for ax, (key, label) in zip(axes[0], panels, strict=True):
            points = [r for r in scored if key in r.metrics]
            for r in points:
                ax.plot(r.metrics["throughput_fps"], r.metrics[key], "o")
                ax.annotate(f"{r.config} {r.workload}", (r.metrics["throughput_fps"], r.metrics[key]), fontsize=7,
                            xytext=(4, 4), textcoords="offset points")
            ax.set_xlabel("inference frames/s")
            ax.set_ylabel(label)
            ax.ticklabel_format(axis="y", useOffset=False)
            ax.margins(x=0.6, y=0.2)
            ax.grid(alpha=0.3)
        fig.suptitle("accuracy against speed (one point per job)")
        save(fig, "accuracy_speed.png")
    return written


def write_report(rows: list[Row], out_dir: Path, source: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    names = charts(rows, out_dir)
    path = out_dir / "report.md"
    path.write_text(markdown(rows, names, source))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m vda.bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(),
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///./mlflow.db)",
    )
    parser.add_argument("--experiment", default="vda-bench")
    parser.add_argument(
        "--sweep",
        default="all",
        help="all: latest run of every configuration; latest: the most recent sweep; or a sweep's run id",
    )
    parser.add_argument("--out", default="bench_report", type=Path, help="output directory (default: bench_report)")
    args = parser.parse_args(argv)
    rows = load_rows(args.tracking_uri, args.experiment, args.sweep)
    path = write_report(rows, args.out, f"experiment `{args.experiment}` in `{args.tracking_uri}`, sweep: {args.sweep}")
    print(f"{path} ({len(rows)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
