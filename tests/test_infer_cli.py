"""``run_infer.py``: bad inputs, a happy path with MLflow, multirun over inputs (in-process through ``run_cli``),
and one run of the real entry script in a subprocess for its exit status."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import mlflow
import numpy as np
import pytest
from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "run_infer.py"
EXPERIMENT = "cli-test"


def overrides(tmp_path: Path, checkpoint: Path | str) -> list[str]:
    return [
        "device=cpu",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"mlflow.experiment={EXPERIMENT}",
    ]


def assert_one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0]


def audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for index in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def undecodable(path: Path) -> Path:
    """A Matroska file whose video stream holds only garbage packets."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mjpeg", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        container.start_encoding()
        for index in range(3):
            packet = av.Packet(b"\x00" * 256)
            packet.stream = stream
            packet.pts = packet.dts = index
            packet.time_base = stream.time_base
            container.mux(packet)
    return path


@pytest.mark.parametrize("case", ["missing", "not_a_video", "audio_only", "no_frames"])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, run_cli, random_checkpoint, case):
    if case == "missing":
        video, words = tmp_path / "nowhere.mp4", ("does not exist", "nowhere.mp4")
    elif case == "not_a_video":
        video = tmp_path / "notes.mp4"
        video.write_text("this is text, not a video\n" * 20)
        words = ("cannot read", "notes.mp4")
    elif case == "audio_only":
        video, words = audio_only(tmp_path / "sound.m4a"), ("no video stream", "sound.m4a")
    else:
        video, words = undecodable(tmp_path / "broken.mkv"), ("no decodable frame", "broken.mkv")
    out = tmp_path / "out"
    proc = run_cli("run_infer.py", f"input={video}", f"output_dir={out}", *overrides(tmp_path, random_checkpoint))
    assert_one_line_error(proc, *words)
    assert not out.exists()
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any run was started


def test_the_entry_script_exits_2_with_one_line_for_a_bad_input(tmp_path, random_checkpoint):
    """The real script in its own interpreter: the exit status and stderr a shell sees, and nothing left behind
    (Hydra's default run folder, outputs/<date>/<time>/ with its log and configs, is removed again)."""
    video, out = tmp_path / "nowhere.mp4", tmp_path / "out"
    args = [sys.executable, str(SCRIPT), f"input={video}", f"output_dir={out}", *overrides(tmp_path, random_checkpoint)]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert_one_line_error(proc, "does not exist", "nowhere.mp4")
    assert list(tmp_path.iterdir()) == []  # no outputs/, no output_dir, no mlflow.db


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_refusal_removes_only_the_files_hydra_wrote_for_the_job(tmp_path, run_cli, verbose):
    """``hydra.run.dir`` may be a folder of the user's: a refusal removes the configs and log Hydra wrote there and
    nothing else; with ``hydra.verbose`` they stay (the log holds the failure's traceback)."""
    folder = tmp_path / "hydra" / "0"  # run_cli's first run folder
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("the user's\n")
    debug = ["hydra.verbose=vda"] if verbose else []
    proc = run_cli("run_infer.py", f"input={tmp_path / 'nowhere.mp4'}", "device=cpu", "mlflow.enabled=false", *debug)
    assert_one_line_error(proc, "does not exist", "nowhere.mp4")
    kept = [".hydra", "notes.txt", "run_infer.log"] if verbose else ["notes.txt"]
    assert sorted(p.name for p in folder.iterdir()) == kept
    assert not verbose or "Traceback" in (folder / "run_infer.log").read_text()


def test_a_refused_first_multirun_job_leaves_no_sweep_folder(tmp_path, run_cli):
    missing = ",".join(str(tmp_path / name) for name in ("a.mp4", "b.mp4"))
    proc = run_cli("run_infer.py", f"input={missing}", "device=cpu", "mlflow.enabled=false", multirun=True)
    assert_one_line_error(proc, "does not exist", "a.mp4")  # the sweep stops at its first refusal
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_dir(tmp_path, run_cli, random_checkpoint):
    video = write_video(tmp_path / "ok.mp4", synthetic_frames(3))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output directory should go")
    proc = run_cli("run_infer.py", f"input={video}", f"output_dir={blocker / 'out'}", *overrides(tmp_path, random_checkpoint))
    assert_one_line_error(proc, "output directory", "blocker")
    assert blocker.read_text().startswith("a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "ok.mp4"]  # Hydra's run folder removed


def test_happy_path_writes_outputs_and_an_mlflow_run(tmp_path, run_cli, mlflow_uri, random_checkpoint):
    video = write_video(tmp_path / "street.mp4", synthetic_frames(26), fps=Fraction(25))
    out = tmp_path / "out"
    proc = run_cli(
        "run_infer.py", f"input={video}", f"output_dir={out}", "output.src=true", *overrides(tmp_path, random_checkpoint)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "26 frames" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["street_depths.npz", "street_src.mp4", "street_vis.mp4"]
    saved = np.load(out / "street_depths.npz")
    assert saved["depths"].shape == (26, 48, 64) and saved["depths"].dtype == np.float32
    assert float(saved["fps"]) == 25.0
    with av.open(str(out / "street_vis.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25 and stream.codec_context.name == "h264"
        assert len(list(container.decode(stream))) == 26

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["input"] == str(video) and params["encoder.name"] == "vits"
    assert params["infer.input_size"] == "28" and params["output.src"] == "True"
    assert metrics["frames"] == 26 and metrics["throughput_fps"] > 0 and metrics["duration_s"] > 0
    for stage in ("decode", "preprocess", "encoder", "head", "align", "write"):
        assert metrics[f"stage_{stage}_s"] > 0
    assert metrics["peak_memory_mib"] > 0 and metrics["encoded_frames"] == 26
    assert tags["weights"] == str(random_checkpoint) and tags["encoder"] == "vits"
    assert params["attention.resolved"] == "sdpa" and params["precision.resolved"] == "fp32"
    assert params["device.resolved"] == "cpu" and params["backend.resolved"] == "torch"
    assert run.info.run_name == "street · sdpa fp32"
    assert "status_reason" not in tags and all(value.strip() for value in tags.values())
    assert tags["torch"] and tags["device_name"]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["config.yaml", "street_vis.mp4"]
    logged = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert f"input: {video}" in logged and "checkpoint: " in logged
    assert not (tmp_path / "mlruns").exists()  # artifacts live beside the store, not in the working directory


def test_multirun_over_inputs(tmp_path, run_cli, mlflow_uri):
    first = write_video(tmp_path / "a.mp4", synthetic_frames(4, seed=1))
    second = write_video(tmp_path / "b.mp4", synthetic_frames(6, seed=2))
    out = tmp_path / "out"
    proc = run_cli(
        "run_infer.py", f"input={first},{second}", f"output_dir={out}", "output.vis=false",
        *overrides(tmp_path, "random"), multirun=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["a_depths.npz", "b_depths.npz"]
    assert np.load(out / "a_depths.npz")["depths"].shape[0] == 4
    assert np.load(out / "b_depths.npz")["depths"].shape[0] == 6
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri)
    everything = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    (parent,) = [r for r in everything if r.data.tags.get("vda.kind") == "sweep"]  # conf/infer.yaml hydra.callbacks
    runs = [r for r in everything if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(everything) == 3 and parent.data.tags["jobs.done"] == "2"
    assert sorted(r.data.params["input"] for r in runs) == [str(first), str(second)]
    assert all(r.data.tags["weights"] == "random" and r.info.status == "FINISHED" for r in runs)
