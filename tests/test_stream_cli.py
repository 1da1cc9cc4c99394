"""``run_infer.py mode=stream``: the same outputs as offline mode and each mode's own depth, image folders (in-process
through ``run_cli``), and a live source stopped by a signal (the real entry script in a subprocess)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
from PIL import Image

import vda
from vda.video import VideoReader, probe
from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]


def overrides(cwd: Path, *extra: str, checkpoint: Path) -> list[str]:
    return [
        *extra,
        "device=cpu",
        "precision=fp32",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        f"mlflow.tracking_uri=sqlite:///{cwd / 'mlflow.db'}",
        "mlflow.experiment=stream",
    ]


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_stream_mode_writes_every_output_offline_mode_writes(tmp_path, run_cli, mlflow_uri, random_checkpoint, tiny_model):
    video = write_video(tmp_path / "walk.mp4", synthetic_frames(12, 48, 64), fps=24)
    every = ("output.src=true", "output.png16=true")
    names, depths = {}, {}
    for mode in ("offline", "stream"):
        out = tmp_path / mode
        proc = run_cli(
            "run_infer.py", *overrides(tmp_path, f"input={video}", f"output_dir={out}", f"mode={mode}", *every, checkpoint=random_checkpoint)
        )
        assert proc.returncode == 0, proc.stderr
        names[mode] = sorted(p.name for p in out.iterdir())
        depths[mode] = np.load(out / "walk_depths.npz")["depths"]
        assert depths[mode].shape == (12, 48, 64) and np.isfinite(depths[mode]).all()
    assert names["stream"] == names["offline"] == ["walk_depths.npz", "walk_depths_png16", "walk_src.mp4", "walk_vis.mp4"]

    # each mode's depth is its own algorithm on the decoded frames (README, "Stream mode"): the offline engine
    # (windows, scale/shift alignment) and the frame-by-frame rule (no alignment); on random weights the two differ
    frames = list(VideoReader(probe(video)))
    np.testing.assert_array_equal(depths["offline"], vda.infer_video(tiny_model, np.stack(frames), input_size=28))
    stream = vda.StreamingDepth(tiny_model, input_size=28)
    expected = np.stack([stream.step(frame) for frame in frames])
    assert rel_l2(depths["stream"], expected) <= 1e-6
    assert rel_l2(depths["stream"], depths["offline"]) > 1e-2

    client = mlflow.tracking.MlflowClient(tracking_uri=mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("stream").experiment_id])
    stream_run = next(r for r in runs if r.data.tags["mode"] == "stream")
    assert {"latency_ms_p50", "latency_ms_p99", "first_frame_s", "stream_state_mib"} <= set(stream_run.data.metrics)


def test_stream_mode_reads_a_folder_of_images(tmp_path, run_cli, random_checkpoint):
    folder = tmp_path / "shots"
    folder.mkdir()
    for index, image in enumerate(synthetic_frames(5, 48, 64)):
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    out = tmp_path / "out"
    extra = (f"input={folder}", f"output_dir={out}", "mode=stream", "mode.image_fps=10", "output.vis=false", "mlflow.enabled=false")
    proc = run_cli("run_infer.py", *overrides(tmp_path, *extra, checkpoint=random_checkpoint))
    assert proc.returncode == 0, proc.stderr
    saved = np.load(out / "shots_depths.npz")
    assert saved["depths"].shape == (5, 48, 64) and float(saved["fps"]) == 10.0


def test_a_live_source_stopped_by_sigint_keeps_its_outputs(tmp_path, random_checkpoint):
    out = tmp_path / "out"
    live = "lavfi:testsrc=size=64x48:rate=25"  # endless
    args = overrides(tmp_path, f"input='{live}'", f"output_dir={out}", "mode=stream", "output.src=true", "mlflow.enabled=false", checkpoint=random_checkpoint)
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "run_infer.py"), *args, f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    frame_bytes = 48 * 64 * 4  # one float32 map in the scratch file

    def frames_written() -> int:
        scratch = [p for p in out.glob(".*scratch*")] if out.is_dir() else []
        return max((p.stat().st_size // frame_bytes for p in scratch), default=0)

    deadline = time.monotonic() + 240
    while frames_written() < 3:  # some frames through, whatever the machine's speed
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()[1]
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=600)  # the frames decoded ahead are still processed and written
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr
    stem = "lavfi_testsrc_size_64x48_rate_25"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}_depths.npz", f"{stem}_src.mp4", f"{stem}_vis.mp4"]
    depths = np.load(out / f"{stem}_depths.npz")["depths"]
    assert depths.shape[0] >= 3 and depths.shape[1:] == (48, 64)


def test_stream_mode_needs_the_torch_backend(tmp_path, run_cli, random_checkpoint):
    video = write_video(tmp_path / "v.mp4", synthetic_frames(3, 48, 64))
    extra = (f"input={video}", f"output_dir={tmp_path / 'o'}", "mode=stream", "backend=openvino", "mlflow.enabled=false")
    proc = run_cli("run_infer.py", *overrides(tmp_path, *extra, checkpoint=random_checkpoint))
    errors = proc.error_lines()
    assert proc.returncode == 2 and len(errors) == 1 and "use backend=torch" in errors[0], proc.stderr
