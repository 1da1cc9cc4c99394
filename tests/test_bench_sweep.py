"""The benchmark command (in-process through ``run_cli``): a two-job multirun is one parent run with two nested
runs, each job in its own worker process; a failed single run exits 2 with one line."""

from mlflow.tracking import MlflowClient

from vda.tracking.tags import KIND as KIND_TAG
from vda.tracking.tags import PARENT as PARENT_TAG

TINY = [
    "device=cpu",
    "job.threads=1",
    "scenario.frames=2",
    "scenario.height=28",
    "scenario.width=28",
    "scenario.warmup=1",
    "scenario.min_runs=2",
    "scenario.min_time_s=0",
]


def test_two_job_multirun_nests_jobs_under_one_parent(tmp_path, run_cli, mlflow_uri):
    proc = run_cli("run_bench.py", "attention=sdpa,xformers", f"mlflow.tracking_uri={mlflow_uri}", *TINY, multirun=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("vda-bench")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(KIND_TAG) == "sweep"]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    jobs = [r for r in runs if r.data.tags.get(PARENT_TAG) == parent.info.run_id]
    assert len(jobs) == 2 == len(runs) - 1
    status = {r.data.params["attention.name"]: r.data.tags["status"] for r in jobs}
    assert status == {"sdpa": "ok", "xformers": "unavailable"}
    assert parent.data.tags["jobs.ok"] == "1"
    assert parent.data.tags["jobs.unavailable"] == "1"
    # each job ran in its own process, with its own log next to its Hydra output, attached to its run
    assert len(list((tmp_path / "sweep").glob("*/*/job_worker.log"))) == 2
    for job in jobs:
        assert "job_worker.log" in {a.path for a in client.list_artifacts(job.info.run_id)}
        assert parent.info.start_time <= job.info.start_time < job.info.end_time <= parent.info.end_time
    names = {r.data.params["attention.name"]: r.info.run_name for r in jobs}
    assert names == {"sdpa": "sdpa·fp32 | forward vits cpu", "xformers": "xformers·fp32 (unavailable) | forward vits cpu"}
    ok = next(r for r in jobs if r.data.tags["status"] == "ok")
    # the worker's own start and end: model build and every timed call fit between them
    samples = client.get_metric_history(ok.info.run_id, "latency_ms")
    assert ok.info.end_time - ok.info.start_time >= ok.data.metrics["first_call_s"] * 1000 + sum(m.value for m in samples) * 0.99
    assert parent.info.run_name == "sweep attention (2 jobs)"
    assert {"report.md", "latency.png", "memory.png"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert "runs: http://127.0.0.1:5000/#/experiments/" in proc.stdout.splitlines()[-1]


def test_single_unavailable_job_is_recorded_and_exits_with_one_line(run_cli, mlflow_uri):
    proc = run_cli("run_bench.py", "attention=xformers", f"mlflow.tracking_uri={mlflow_uri}", *TINY)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "unavailable" in errors[0] and "xformers" in errors[0] and "MLflow run" in errors[0]
    assert "Traceback" not in proc.stderr
    client = MlflowClient(tracking_uri=mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("vda-bench").experiment_id])
    assert run.data.tags["status"] == "unavailable"
