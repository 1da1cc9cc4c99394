"""What the MLflow dashboard shows, checked through MLflow's API: true start and end times, names with the varying
part first, resolved params, one metric vocabulary, a sweep parent that summarises its sweep, the URL of the runs
table, no empty tags, and refusals that leave nothing behind."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from vda.bench.config import register_configs as register_bench
from vda.bench.recorder import BENCH_VIEW, job_record
from vda.bench.result import JobResult, Status
from vda.bench.sweep import BenchSweepRun
from vda.config import to_object
from vda.errors import VDAError
from vda.infer.single import run_inference
from vda.infer.config import register_configs as register_infer
from vda.tracking import client, early, runs, worker
from vda.tracking import tags as T
from vda.tracking.environment import cpu_model
from vda.tracking.store import open_store
from vda.tracking.sweep import PARENT_RUN_FILE, swept_keys
from vda.tracking.ui import SHARED_VIEW_TAG
from vda.tracking.views import INFER_VIEW
from vda.tracking.vocabulary import METRICS, base_name, markdown_table, rounded
from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    """One sqlite store for the module (creating its schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def compose_config(name: str, overrides: list[str]):
    (register_infer if name == "infer" else register_bench)()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=overrides)


def assert_no_empty_tag(run) -> None:
    assert all(value.strip() for value in run.data.tags.values()), run.data.tags


def shared_view(client: MlflowClient, experiment_id: str, url: str) -> dict:
    key = url.split("viewStateShareKey=")[1].split("&")[0]
    return json.loads(client.get_experiment(experiment_id).tags[SHARED_VIEW_TAG + key])


# ---------------------------------------------------------------- vocabulary
def test_timings_keep_four_significant_digits_and_errors_all_of_them():
    assert rounded("latency_ms_p50", 3499.8156990000098) == 3500.0
    assert rounded("peak_memory_mib", 607.91234) == 607.9
    assert rounded("first_call_s", 0.000123456) == 0.0001235
    assert rounded("throughput_fps/sdpa-fp32", 13.14159) == 13.14  # a sweep's per-configuration summary
    assert rounded("equiv_rel_l2", 1.234567891e-5) == 1.234567891e-5
    assert rounded("frames", 26) == 26.0
    assert math.isnan(rounded("latency_ms_p90", float("nan")))
    with pytest.raises(VDAError, match="unknown metric 'peak_mem_mb'"):
        rounded("peak_mem_mb", 1.0)


def test_every_metric_name_carries_its_unit_and_is_documented():
    suffixes = {"ms": ("_ms", "_ms_p50", "_ms_p90", "_ms_p99", "_ms_mean", "_ms_std"), "s": ("_s",), "MiB": ("_mib",),
                "frames/s": ("_fps",)}
    for record in METRICS.records():
        if record.value.unit in suffixes:
            assert record.name.endswith(suffixes[record.value.unit]), record.name
    table = markdown_table()
    assert all(f"`{name}`" in table for name in METRICS.names())


# ---------------------------------------------------------------- inference
@pytest.fixture(scope="module")
def infer_run(uri, tmp_path_factory, random_checkpoint):
    """One tracked in-process inference of a small clip: (result, client, run, started_ms, ended_ms)."""
    tmp = tmp_path_factory.mktemp("infer")
    video = write_video(tmp / "street.mp4", synthetic_frames(6, 48, 64))
    overrides = [
        f"input={video}", f"output_dir={tmp / 'out'}", "device=cpu", f"model.checkpoint={random_checkpoint}",
        "infer.input_size=28", "output.progress=false", f"mlflow.tracking_uri={uri}", "mlflow.experiment=infer-test",
    ]
    started = int(time.time() * 1000)
    result = run_inference(to_object(compose_config("infer", overrides)))
    ended = int(time.time() * 1000)
    client = MlflowClient(tracking_uri=uri)
    return result, client, client.get_run(result.run_id), started, ended


def test_an_inference_run_is_named_timed_and_parametrised(infer_run):
    result, _, run, started, ended = infer_run
    assert run.info.run_name == "street · sdpa fp32"
    assert started <= run.info.start_time < run.info.end_time <= ended
    params = run.data.params
    assert (params["device.resolved"], params["precision.resolved"]) == ("cpu", "fp32")
    assert (params["attention.resolved"], params["backend.resolved"]) == ("sdpa", "torch")
    assert params["precision.name"] == "auto"  # the configured value stays beside the resolved one
    assert run.data.tags[T.STATUS] == "done" and T.STATUS_REASON not in run.data.tags
    assert run.data.tags["cpu"] == cpu_model() and run.data.tags["device_name"] == cpu_model()
    assert_no_empty_tag(run)


def test_inference_metrics_come_from_the_vocabulary_rounded(infer_run):
    _, _, run, _, _ = infer_run
    metrics = run.data.metrics
    assert {"frames", "duration_s", "throughput_fps", "peak_memory_mib", "model_load_s", "stage_encoder_s"} <= set(metrics)
    for name, value in metrics.items():
        assert name in METRICS, name
        assert value == rounded(name, value), (name, value)


def test_inference_prints_the_store_and_a_url_opening_its_runs(infer_run, uri):
    result, client, run, _, _ = infer_run
    assert uri in result.where and "workflowType=machine_learning" in result.where
    url = result.where.split("runs: ")[1].split()[0]
    assert url.startswith(f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs?viewStateShareKey=")
    state = shared_view(client, run.info.experiment_id, url)
    assert "metrics.`throughput_fps`" in state["selectedColumns"]
    assert "params.`precision.resolved`" in state["selectedColumns"]
    assert state["searchFilter"] == "" and state["runsHiddenMode"] == "SHOW_ALL"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[T.EXPERIMENT_KIND] == T.MACHINE_LEARNING and experiment.tags[T.COMMAND] == "run_infer.py"
    assert "run_infer.py" in experiment.tags[T.NOTE]
    assert experiment.artifact_location.endswith("/mlartifacts")


def test_a_refused_run_leaves_no_folder_and_no_store(tmp_path, random_checkpoint):
    video = write_video(tmp_path / "v.mp4", synthetic_frames(2, 48, 64))
    overrides = [
        f"input={video}", f"output_dir={tmp_path / 'new' / 'out'}", "device=cpu", "attention=xformers",
        f"model.checkpoint={random_checkpoint}", f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
    ]
    with pytest.raises(VDAError, match="xformers"):
        run_inference(to_object(compose_config("infer", overrides)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_tracking_off_imports_neither_mlflow_nor_pandas():
    code = (
        "import sys, run_infer, vda.infer.command, vda.infer.tracked, vda.bench.command, vda.bench.sweep; "
        "print(sorted(m for m in ('mlflow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


# ---------------------------------------------------------------- the process that holds a live run
def open_request(uri: str, name: str) -> dict:
    return {"op": "open", "uri": uri, "experiment": "live-test", "view": dataclasses.asdict(INFER_VIEW), "name": name,
            "tags": {"input": "clip.mp4"}, "params": {"device.resolved": "cpu"}, "texts": {"config.yaml": "a: 1\n"},
            "parent": None, "start_ms": client.now_ms()}


def test_the_run_process_imports_no_torch_ignores_signals_and_ends_an_abandoned_run_killed(mlflow_uri, tmp_path):
    """The real child: MLflow but neither torch nor the model imported; SIGINT/SIGTERM do not stop it (the command
    decides the status); when the command's end of the pipe closes without ``end`` (killed hard), its run ends KILLED."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPROFILEIMPORTTIME": "1"}
    log = tmp_path / "stderr.txt"  # the import log is long: a pipe nobody reads yet would fill up and stall the child
    with log.open("w") as stderr:
        child = subprocess.Popen([sys.executable, "-m", worker.__name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=stderr, text=True, env=env, start_new_session=True)
    child.stdin.write(json.dumps({"op": "prepare", "uri": mlflow_uri}) + "\n")
    child.stdin.write(json.dumps(open_request(mlflow_uri, "abandoned")) + "\n")
    child.stdin.flush()
    assert json.loads(child.stdout.readline()) == {}
    opened = json.loads(child.stdout.readline())
    assert set(opened) == {"run_id", "where"} and mlflow_uri in opened["where"], opened
    for signum in (signal.SIGINT, signal.SIGTERM):
        child.send_signal(signum)
    child.stdin.close()
    assert child.wait(timeout=120) == 0, log.read_text()[-2000:]
    child.stdout.close()
    imported = {line.rsplit("|", 1)[1].strip() for line in log.read_text().splitlines() if line.startswith("import time:")}
    assert {"mlflow", "vda.tracking.client"} <= imported  # the log covers the whole session (MLflow is imported late)
    assert not {m for m in imported if m.split(".")[0] == "torch"}
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(opened["run_id"])
    assert run.info.status == "KILLED" and run.data.tags[T.STATUS] == "killed"
    assert run.data.tags[T.STATUS_REASON] == worker.ORPHANED
    assert run.data.params == {"device.resolved": "cpu"} and run.info.run_name == "abandoned"


def test_the_run_process_creates_nothing_before_open_and_stops_after_a_refused_open(tmp_path):
    fresh = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    replies = io.StringIO()
    worker.serve([json.dumps({"op": "prepare", "uri": fresh})], replies)  # the command refused: the pipe closes
    assert replies.getvalue() == "{}\n" and not (tmp_path / "new").exists()
    replies = io.StringIO()
    requests = [open_request("nosuchscheme://store", "refused"), {"op": "end", "status": "FINISHED", "tags": {}}]
    worker.serve([json.dumps(request) for request in requests], replies)
    (reply,) = [json.loads(line) for line in replies.getvalue().splitlines()]  # nothing read after the refusal
    assert reply["error"].startswith("cannot use the MLflow store nosuchscheme://store (") and "\n" not in reply["error"]



def test_the_command_line_decides_whether_the_child_starts_early(monkeypatch, tmp_path):
    """run_infer.py starts the child before torch's import unless its arguments turn tracking off or only print;
    the early ``prepare`` names the store the arguments (or $MLFLOW_TRACKING_URI) name."""
    started = []

    class Child:
        def __init__(self):
            self.stdin = io.StringIO()
            started.append(self)

    monkeypatch.setattr(early, "start_worker", Child)
    monkeypatch.setattr(early.atexit, "register", lambda fn: None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for argv in (["--help"], ["input=a.mp4", "mlflow.enabled=false"], ["mlflow.enabled=False"], ["++mlflow.enabled=0"],
                 ["-c", "job"]):
        early.start_early(argv)
        assert early.take() is None, argv
    for argv, uri in (([f"input={tmp_path}"], early.tracking_uri(None)),
                      (["mlflow.tracking_uri=sqlite:////tmp/a.db"], "sqlite:////tmp/a.db"),
                      (["-m", "encoder=vits,vitb"], early.tracking_uri(None))):
        early.start_early(argv)
        child = early.take()
        assert child is started[-1] and json.loads(child.stdin.getvalue()) == {"op": "prepare", "uri": uri}, argv
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/env.db")
    early.start_early([])
    assert json.loads(early.take().stdin.getvalue())["uri"] == "sqlite:////tmp/env.db"


def test_the_first_live_run_takes_the_early_child(mlflow_uri, monkeypatch):
    monkeypatch.setattr(early, "_early", None)
    early.start_early([f"mlflow.tracking_uri={mlflow_uri}"])
    pid = early._early.pid
    with runs.LiveRun(SimpleNamespace(tracking_uri=mlflow_uri, experiment="early"), INFER_VIEW) as run:
        assert run._process.pid == pid and early.take() is None
        run.open("early", {"input": "clip.mp4"}, {"device.resolved": "cpu"}, {"config.yaml": "a: 1\n"})
        run_id = run.wait()
    assert MlflowClient(mlflow_uri).get_run(run_id).info.status == "FINISHED"


def test_an_early_child_no_run_took_is_killed_at_exit_and_touched_nothing(tmp_path):
    code = "from vda.tracking import early; early.start_early([]); print(early._early.pid, flush=True)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    with pytest.raises(ProcessLookupError):
        os.kill(int(out.stdout), 0)
    assert list(tmp_path.iterdir()) == []


class GoneReader(io.StringIO):
    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_run_whose_command_is_gone_before_the_answer_ends_killed(mlflow_uri):
    """Killed while its run was opening: the answer finds no reader; the run ends KILLED and nothing more is read."""
    end = {"op": "end", "status": "FINISHED", "tags": {T.STATUS: "done"}}
    worker.serve([json.dumps(open_request(mlflow_uri, "gone")), json.dumps(end)], GoneReader())
    client = MlflowClient(tracking_uri=mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("live-test").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags[T.STATUS_REASON] == worker.ORPHANED


# ---------------------------------------------------------------- benchmark
def bench_cfg(uri: str, *overrides: str):
    return compose_config("bench", ["device=cpu", f"mlflow.tracking_uri={uri}", "mlflow.experiment=bench-test", *overrides])


def forward_result(p50: float, precision: str, start_ms: int) -> JobResult:
    metrics = {"latency_ms_p50": p50, "latency_ms_p90": p50 * 1.1, "latency_ms_p99": p50 * 1.2, "throughput_fps": 8000.0 / p50,
               "peak_memory_mib": 700.123456, "first_call_s": 1.5}
    params = {"device.resolved": "cpu", "precision.resolved": precision, "attention.resolved": "sdpa",
              "backend.resolved": "torch"}
    return JobResult(metrics=metrics, params=params, samples_ms=[p50] * 3, start_ms=start_ms, end_ms=start_ms + 4000)


def test_a_job_run_carries_the_workers_start_and_end(uri):
    cfg = bench_cfg(uri, "precision=fp32")
    store = open_store(cfg.mlflow, BENCH_VIEW)
    run_id = runs.write(store, job_record(to_object(cfg), forward_result(300.0, "fp32", 1_700_000_000_000)))
    run = store.client.get_run(run_id)
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_000, 1_700_000_004_000)
    assert run.info.run_name == "sdpa·fp32 | forward vits cpu"
    assert run.data.metrics["peak_memory_mib"] == 700.1
    assert [m.value for m in store.client.get_metric_history(run_id, "latency_ms")] == [300.0] * 3


def test_equivalence_job_rows_say_what_they_compare(uri):
    cfg = to_object(bench_cfg(uri, "scenario=equivalence", "precision=fp32"))
    children = [
        JobResult(name="sdpa fp32 vs math fp32", params={"attention.name": "sdpa"},
                  metrics={"equiv_max_abs_err": 2.123456789e-6, "equiv_rel_l2": 1e-7, "equiv_absrel": 3e-7, "equiv_delta1": 1.0}),
        JobResult(Status.unavailable, "no xformers", name="xformers fp32 vs math fp32", params={"attention.name": "xformers"}),
    ]
    result = JobResult(metrics={"peak_memory_mib": 800.0}, children=children,
                       params={"precision.resolved": "fp32", "attention.resolved": "sdpa,xformers"})
    store = open_store(cfg.mlflow, BENCH_VIEW)
    run_id = runs.write(store, job_record(cfg, result))
    job = store.client.get_run(run_id)
    assert job.info.run_name == "fp32 | equivalence vits cpu"
    assert job.data.params["attention.resolved"] == "sdpa,xformers" and "attention.name" not in job.data.params
    nested = store.client.search_runs([store.experiment_id], f"tags.`{T.PARENT}` = '{run_id}'")
    names = {r.info.run_name: r for r in nested}
    assert set(names) == {"sdpa fp32 vs math fp32", "xformers fp32 vs math fp32 (unavailable)"}
    assert names["sdpa fp32 vs math fp32"].data.metrics["equiv_max_abs_err"] == 2.123456789e-6  # full precision
    assert names["sdpa fp32 vs math fp32"].data.params["attention.resolved"] == "sdpa"


def test_a_sweep_parent_summarises_its_sweep(uri, tmp_path, capsys):
    cfg = bench_cfg(uri)
    overrides = ["attention=sdpa,xformers", "precision=fp32,bf16", "scenario.frames=4"]
    hydra = {"sweep": {"dir": str(tmp_path / "sweep")}, "overrides": {"task": overrides}}
    config = OmegaConf.create({"mlflow": OmegaConf.to_container(cfg.mlflow), "hydra": hydra})
    callback = BenchSweepRun()
    callback.on_multirun_start(config)
    parent = (tmp_path / "sweep" / PARENT_RUN_FILE).read_text()
    store = open_store(cfg.mlflow, BENCH_VIEW)
    now = int(time.time() * 1000)
    for p50, precision in ((300.0, "fp32"), (200.0, "bf16")):
        runs.write(store, job_record(to_object(bench_cfg(uri, f"precision={precision}")), forward_result(p50, precision, now)), parent)
    unavailable = JobResult(Status.unavailable, "xformers needs CUDA", params={"precision.resolved": "fp32"}, start_ms=now, end_ms=now + 50)
    runs.write(store, job_record(to_object(bench_cfg(uri, "attention=xformers", "precision=fp32")), unavailable), parent)
    callback.on_multirun_end(config)

    run = store.client.get_run(parent)
    assert run.info.run_name == "sweep attention×precision (3 jobs)" and run.info.status == "FINISHED"
    assert run.data.tags[T.OVERRIDES] == " ".join(overrides)
    assert (run.data.tags["jobs.ok"], run.data.tags["jobs.unavailable"]) == ("2", "1")
    note = run.data.tags[T.NOTE]
    assert "| sdpa·bf16 | ok | 200 |" in note
    assert "**latency_ms_p50** (lower is better): sdpa·bf16 (200)" in note
    assert "**throughput_fps** (higher is better): sdpa·bf16 (40)" in note
    assert "## Latency, throughput and memory" in note  # the report's tables
    assert run.data.metrics["latency_ms_p50/sdpa-fp32"] == 300.0 and run.data.metrics["latency_ms_p50/sdpa-bf16"] == 200.0
    assert all(base_name(name) in METRICS for name in run.data.metrics)
    artifacts = {a.path for a in store.client.list_artifacts(parent)}
    assert {"report.md", "latency.png", "memory.png"} <= artifacts
    jobs = store.client.search_runs([store.experiment_id], f"tags.`{T.PARENT}` = '{parent}'")
    assert "xformers·fp32 (unavailable) | forward vits cpu" in {j.info.run_name for j in jobs}
    for job in jobs:
        assert_no_empty_tag(job)
    assert_no_empty_tag(run)
    printed = capsys.readouterr().out
    url = printed.split("runs: ")[1].split()[0]
    assert shared_view(store.client, store.experiment_id, url)["searchFilter"] == f"tags.`{T.PARENT}` = '{parent}'"


def test_swept_keys_are_the_overrides_with_several_values():
    assert swept_keys(["attention=sdpa,math", "precision=fp32", "scenario.frames=range(2,6)", "+x=1,2"]) == [
        "attention", "scenario.frames", "x"]


def test_the_dashboard_prints_the_url_of_each_vda_experiment(tmp_path):
    from vda.config import MlflowConfig
    from vda.tracking.store import ExperimentView

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    open_store(MlflowConfig(tracking_uri=uri, experiment="my-bench"), BENCH_VIEW)
    open_store(MlflowConfig(tracking_uri=uri, experiment="other"), ExperimentView("", "not vda"))
    out = subprocess.run(
        [sys.executable, "-m", "vda.dashboard", "--tracking-uri", uri, "--port", "5111", "--dry-run"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == f"MLflow store: {uri}"
    assert lines[1].startswith("my-bench: http://127.0.0.1:5111/#/experiments/") and len(lines) == 2


def test_the_docs_show_the_vocabulary_as_it_is():
    assert markdown_table() in (ROOT / "docs" / "tracking.md").read_text()
