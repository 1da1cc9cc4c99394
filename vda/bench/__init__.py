"""Benchmark harness behind ``run_bench.py``, one module per job (as in optimum-benchmark):

* :mod:`vda.bench.config` — the structured config (``base_bench`` and the ``scenario/base_*`` schemas);
* :mod:`vda.bench.scenarios` — what is measured: ``forward``, ``equivalence``, ``pipeline``;
* :mod:`vda.runtime.timing`, :mod:`vda.runtime.memory` — the latency and memory trackers;
* :mod:`vda.bench.agreement` — error maths between two outputs;
* :mod:`vda.bench.launcher` — runs each job in a fresh process; :mod:`vda.bench.worker` is that process;
* :mod:`vda.bench.recorder` — one MLflow run per job, nested runs per implementation;
* :mod:`vda.bench.sweep` — the MLflow parent run of a multirun (a Hydra callback);
* :mod:`vda.bench.report` — Markdown table and PNG charts from an experiment's runs.
"""
