"""The reliability rows that are about the commands: signals (the real entry scripts in a subprocess), existing
results and failed runs in MLflow (in-process through ``run_cli``)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from vda.video.synthetic import synthetic_clip, synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]


def overrides(cwd: Path, *extra: str) -> list[str]:
    return [*extra, "device=cpu", f"mlflow.tracking_uri=sqlite:///{cwd / 'mlflow.db'}", "mlflow.experiment=reliability"]


def command(script: str, cwd: Path, *extra: str) -> list[str]:
    """The real entry script in its own interpreter (what a signal is sent to)."""
    hydra = [f"hydra.run.dir={cwd / 'hydra'}", f"hydra.sweep.dir={cwd / 'hydra'}"]
    return [sys.executable, str(ROOT / script), *overrides(cwd, *extra), *hydra]


def runs(cwd: Path) -> list:
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reliability")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def wait_for(predicate, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the child to start working"
        time.sleep(0.1)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_inference_cleans_up(tmp_path, mlflow_uri, random_checkpoint, signum, status):
    video = synthetic_clip(tmp_path / "long.mp4", 400, 48, 64)
    out = tmp_path / "out"
    args = command(
        "run_infer.py", tmp_path, f"input={video}", f"output_dir={out}", f"model.checkpoint={random_checkpoint}",
        "infer.input_size=28", "output.src=true",
    )
    child = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: out.is_dir() and any(p.name.startswith(".long_depths.scratch") for p in out.iterdir()))
    child.send_signal(signum)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == status, stderr
    assert "Traceback" not in stderr and f"interrupted by {signum.name}" in stderr
    assert not out.exists()  # staged outputs, the scratch file and the folder this run created removed
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED" and run.data.tags["status"] == "killed"


def test_existing_result_is_refused_unless_overwrite(tmp_path, run_cli, random_checkpoint):
    video = write_video(tmp_path / "clip.mp4", synthetic_frames(3, 48, 64))
    out = tmp_path / "out"
    base = overrides(
        tmp_path, f"input={video}", f"output_dir={out}", f"model.checkpoint={random_checkpoint}",
        "infer.input_size=28", "output.vis=false", "mlflow.enabled=false",
    )
    first = run_cli("run_infer.py", *base)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    refused = run_cli("run_infer.py", *base)
    lines = refused.error_lines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "clip_depths.npz already exists" in lines[0] and "output.overwrite=true" in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    replaced = run_cli("run_infer.py", *base, "output.overwrite=true")
    assert replaced.returncode == 0, replaced.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} != before


def test_a_failed_inference_leaves_a_failed_mlflow_run(tmp_path, run_cli, mlflow_uri):
    video = write_video(tmp_path / "clip.mp4", synthetic_frames(3, 48, 64))
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    proc = run_cli(
        "run_infer.py", *overrides(tmp_path, f"input={video}", f"output_dir={tmp_path / 'out'}", f"model.checkpoint={broken}")
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "cannot read checkpoint" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = runs(tmp_path)  # started before the model was loaded, so the failure is recorded
    assert run.info.status == "FAILED" and run.data.tags["status"] == "failed"
    assert run.data.tags["status_reason"].startswith("CheckpointError: cannot read checkpoint")
    assert run.data.tags["input"] == str(video)


def test_signal_during_a_benchmark_records_the_job_as_killed(tmp_path, mlflow_uri):
    args = command("run_bench.py", tmp_path, "scenario.min_time_s=600", "scenario.frames=2", "scenario.height=28", "scenario.width=28")
    child = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hydra = tmp_path / "hydra"
    wait_for(lambda: (hydra / "job_worker.log").exists() and "random weights" in (hydra / "job_worker.log").read_text())
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 143 and "Traceback" not in stderr, stderr
    (run,) = runs(tmp_path)
    assert run.info.status == "KILLED" and run.data.tags["status"] == "killed"


def test_a_signal_stops_a_multirun_after_the_current_job_keeping_the_finished_ones(tmp_path, random_checkpoint):
    short = write_video(tmp_path / "a_short.mp4", synthetic_frames(3, 48, 64))
    long = synthetic_clip(tmp_path / "b_long.mp4", 400, 48, 64)
    out = tmp_path / "out"
    args = command(
        "run_infer.py", tmp_path, "-m", f"input={short},{long}", f"output_dir={out}",
        f"model.checkpoint={random_checkpoint}", "infer.input_size=28", "mlflow.enabled=false",
    )
    child = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: out.is_dir() and any(p.name.startswith(".b_long_depths.scratch") for p in out.iterdir()))
    child.send_signal(signal.SIGTERM)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 143 and "Traceback" not in stderr, stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_short_depths.npz", "a_short_vis.mp4"]
