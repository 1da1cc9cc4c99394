"""``run_infer.py mode=stream``: the same outputs as offline mode, image folders, and a live source stopped by a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
from PIL import Image

from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]


def command(cwd: Path, *overrides: str, checkpoint: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "run_infer.py"),
        *overrides,
        "device=cpu",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        f"mlflow.tracking_uri=sqlite:///{cwd / 'mlflow.db'}",
        "mlflow.experiment=stream",
        f"hydra.run.dir={cwd / 'hydra'}",
    ]


def test_stream_mode_writes_every_output_offline_mode_writes(tmp_path, random_checkpoint):
    video = write_video(tmp_path / "walk.mp4", synthetic_frames(12, 48, 64), fps=24)
    every = ("output.src=true", "output.png16=true")
    names = {}
    for mode in ("offline", "stream"):
        out = tmp_path / mode
        proc = subprocess.run(
            command(tmp_path, f"input={video}", f"output_dir={out}", f"mode={mode}", *every, checkpoint=random_checkpoint),
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        names[mode] = sorted(p.name for p in out.iterdir())
        depths = np.load(out / "walk_depths.npz")["depths"]
        assert depths.shape == (12, 48, 64) and np.isfinite(depths).all()
    assert names["stream"] == names["offline"] == ["walk_depths.npz", "walk_depths_png16", "walk_src.mp4", "walk_vis.mp4"]
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("stream").experiment_id])
    stream_run = next(r for r in runs if r.data.tags["mode"] == "stream")
    assert {"latency_ms_p50", "latency_ms_p99", "first_frame_s", "stream_state_mib"} <= set(stream_run.data.metrics)


def test_stream_mode_reads_a_folder_of_images(tmp_path, random_checkpoint):
    folder = tmp_path / "shots"
    folder.mkdir()
    for index, image in enumerate(synthetic_frames(5, 48, 64)):
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    out = tmp_path / "out"
    proc = subprocess.run(
        command(tmp_path, f"input={folder}", f"output_dir={out}", "mode=stream", "mode.image_fps=10", "mlflow.enabled=false", checkpoint=random_checkpoint),
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    saved = np.load(out / "shots_depths.npz")
    assert saved["depths"].shape == (5, 48, 64) and float(saved["fps"]) == 10.0


def test_a_live_source_stopped_by_sigint_keeps_its_outputs(tmp_path, random_checkpoint):
    out = tmp_path / "out"
    live = "lavfi:testsrc=size=64x48:rate=25"  # endless
    child = subprocess.Popen(
        command(tmp_path, f"input='{live}'", f"output_dir={out}", "mode=stream", "output.src=true", "mlflow.enabled=false", checkpoint=random_checkpoint),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 240
    while not (out.is_dir() and any(p.name.startswith(".") and "scratch" in p.name for p in out.iterdir())):
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()[1]
        time.sleep(0.2)
    time.sleep(2)  # let some frames through
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr
    stem = "lavfi_testsrc_size_64x48_rate_25"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}_depths.npz", f"{stem}_src.mp4", f"{stem}_vis.mp4"]
    depths = np.load(out / f"{stem}_depths.npz")["depths"]
    assert depths.shape[0] >= 1 and depths.shape[1:] == (48, 64)


def test_stream_mode_needs_the_torch_backend(tmp_path, random_checkpoint):
    video = write_video(tmp_path / "v.mp4", synthetic_frames(3, 48, 64))
    proc = subprocess.run(
        command(tmp_path, f"input={video}", f"output_dir={tmp_path / 'o'}", "mode=stream", "backend=openvino", "mlflow.enabled=false", checkpoint=random_checkpoint),
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(errors) == 1 and "use backend=torch" in errors[0], proc.stderr
