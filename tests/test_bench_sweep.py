"""The benchmark command (in-process through ``run_cli``): a two-job multirun is one parent run with two nested
runs, each job in its own worker process; a failed single run exits 2 with one line."""

from mlflow.tracking import MlflowClient

from vda.tracking import KIND_TAG, PARENT_TAG

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
    # each job ran in its own process, with its own log next to its Hydra output
    assert len(list((tmp_path / "sweep").glob("*/*/job_worker.log"))) == 2


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
