"""The parent run of a benchmark sweep (``hydra.callbacks`` in ``conf/bench.yaml``): the generic summary of
:class:`vda.tracking.sweep.SweepRun`, plus the sweep's report (``report.md`` and its charts) as artifacts."""

from __future__ import annotations

from pathlib import Path

from vda.bench.recorder import BENCH_VIEW, SUMMARY_METRICS
from vda.bench.report import markdown, rows_of_sweep, write_report
from vda.tracking import client
from vda.tracking.store import Store
from vda.tracking.sweep import SweepRun

REPORT_DIR = "report"
NOTE_REPORT_CHARS = 3000  # the report's tables go into the description up to this size (a tag's value is bounded)


class BenchSweepRun(SweepRun):
    view = BENCH_VIEW
    summary_metrics = SUMMARY_METRICS

    def attach(self, store: Store, run_id: str, sweep_dir: Path) -> str:
        rows = rows_of_sweep(store.client, store.experiment_id, run_id)
        if not rows:
            return ""
        out = sweep_dir / REPORT_DIR
        report = write_report(rows, out, f"sweep run {run_id} in `{store.uri}`")
        client.log_artifacts(store, run_id, {}, [report, *sorted(out.glob("*.png"))])
        pointer = f"\n\nThe full report, with its charts, is this run's artifact `{report.name}`."
        tables = markdown(rows, [], "this sweep").split("\n", 3)[-1]  # without its title and source lines
        return pointer + ("\n\n" + tables if len(tables) <= NOTE_REPORT_CHARS else "")

    def announce(self, line: str) -> None:
        print(line, flush=True)


__all__ = ["BenchSweepRun"]
