"""Benchmark harness behind ``run_bench.py``, one module per job (as in optimum-benchmark):

* :mod:`vda.bench.command` — the body of ``run_bench.py``: measure one job, record it, summarise it;
* :mod:`vda.bench.config` — the structured config (``base_bench`` and the scenario schemas);
* :mod:`vda.bench.scenarios` — what is measured: ``forward``, ``equivalence``, ``pipeline``, ``stream``;
* :mod:`vda.bench.agreement` — how far one output is from a reference (error maths);
* :mod:`vda.bench.no_model` — the I/O-ceiling runner of ``scenario.no_model=true``;
* :mod:`vda.bench.launcher` — runs each job in a fresh process; :mod:`vda.bench.worker` is that process;
* :mod:`vda.bench.recorder` — one MLflow run per job, nested runs per implementation;
* :mod:`vda.bench.report` — Markdown table and PNG charts from an experiment's runs.

The sweep's MLflow parent run (a Hydra callback) is :class:`vda.bench.sweep.BenchSweepRun` (report attached).
"""
