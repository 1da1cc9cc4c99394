"""``run_infer.py`` over a dataset: a folder or @list, mirrored outputs, resuming, workers, shards (in-process
through ``run_cli``); a killed run and the submitit launcher (the real entry script in a subprocess)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from vda.errors import ConfigError
from vda.infer.dataset import DatasetItem, discover, outputs_complete, parse_shard, remove_stale, select_shard
from vda.video.synthetic import synthetic_clip

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "run_infer.py"


def settings(cwd: Path, checkpoint: Path) -> list[str]:
    return [
        "device=cpu",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        f"mlflow.tracking_uri=sqlite:///{cwd / 'mlflow.db'}",
        "mlflow.experiment=dataset-test",
    ]


def cli_args(cwd: Path, checkpoint: Path, *overrides: str, multirun: bool = False) -> list[str]:
    """The real entry script in its own interpreter (the launcher test, the killed run)."""
    return [
        sys.executable,
        str(SCRIPT),
        *(["-m"] if multirun else []),
        *overrides,
        *settings(cwd, checkpoint),
        f"hydra.run.dir={cwd / 'hydra'}",
        f"hydra.sweep.dir={cwd / 'sweep'}",
    ]


def cli_env() -> dict[str, str]:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def run_script(cwd: Path, checkpoint: Path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    args = cli_args(cwd, checkpoint, *overrides, multirun=multirun)
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=cli_env())


def read_summary(path: Path, data: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {Path(row["input"]).relative_to(data).as_posix(): row for row in csv.DictReader(handle)}


def files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def runs(cwd: Path) -> list:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    return client.search_runs([client.get_experiment_by_name("dataset-test").experiment_id])


@pytest.fixture
def folder(tmp_path) -> Path:
    """data/a/clip.mp4, data/b/clip.mp4 (same stem), data/top.mkv, a broken data/b/broken.mp4, a text file."""
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "b").mkdir()
    synthetic_clip(data / "a" / "clip.mp4", 5, seed=1)
    synthetic_clip(data / "b" / "clip.mp4", 7, seed=2)
    synthetic_clip(data / "top.mkv", 6, seed=3)
    (data / "b" / "broken.mp4").write_text("not a video\n")
    (data / "notes.txt").write_text("not listed: no video ending\n")
    return data


EXPECTED = [
    "a/clip_depths.npz",
    "a/clip_vis.mp4",
    "b/clip_depths.npz",
    "b/clip_vis.mp4",
    "summary.csv",
    "top_depths.npz",
    "top_vis.mp4",
]


def test_folder_gives_mirrored_outputs_a_summary_and_resumes(tmp_path, run_cli, mlflow_uri, folder, random_checkpoint):
    out = tmp_path / "out"
    proc = run_cli("run_infer.py", *settings(tmp_path, random_checkpoint), "input=data", "output_dir=out")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"4 videos: 3 done, 0 skipped, 1 failed (summary: {out / 'summary.csv'})" in proc.stdout
    assert files_under(out) == EXPECTED
    assert np.load(out / "a" / "clip_depths.npz")["depths"].shape == (5, 48, 64)
    assert np.load(out / "b" / "clip_depths.npz")["depths"].shape == (7, 48, 64)
    summary = read_summary(out / "summary.csv", folder)
    assert list(summary) == ["a/clip.mp4", "b/broken.mp4", "b/clip.mp4", "top.mkv"]
    assert {name: row["status"] for name, row in summary.items()} == {
        "a/clip.mp4": "done",
        "b/broken.mp4": "failed",
        "b/clip.mp4": "done",
        "top.mkv": "done",
    }
    assert summary["b/clip.mp4"]["frames"] == "7" and float(summary["b/clip.mp4"]["seconds"]) > 0
    assert summary["b/broken.mp4"]["error"].startswith("VideoError: cannot read") and "broken.mp4" in summary["b/broken.mp4"]["error"]

    (parent,) = [r for r in runs(tmp_path) if r.data.tags.get("vda.kind") == "dataset"]
    children = [r for r in runs(tmp_path) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted((Path(r.data.tags["input"]).name, r.data.tags["status"]) for r in children) == [
        ("broken.mp4", "failed"),
        ("clip.mp4", "done"),
        ("clip.mp4", "done"),
        ("top.mkv", "done"),
    ]
    assert parent.info.status == "FAILED" and parent.data.tags["videos.failed"] == "1"

    written = {name: (out / name).stat().st_mtime_ns for name in EXPECTED if name != "summary.csv"}
    again = run_cli("run_infer.py", *settings(tmp_path, random_checkpoint), "input=data", "output_dir=out")
    assert again.returncode == 1, again.stderr[-3000:]
    assert "4 videos: 0 done, 3 skipped, 1 failed" in again.stdout
    assert {name: (out / name).stat().st_mtime_ns for name in written} == written
    assert [row["status"] for row in read_summary(out / "summary.csv", folder).values()] == ["skipped", "failed", "skipped", "skipped"]

    redo = run_cli("run_infer.py", *settings(tmp_path, random_checkpoint), "input=data", "input_glob=a/*.mp4", "output_dir=out", "output.overwrite=true")
    assert redo.returncode == 0, redo.stderr[-3000:]
    assert "1 videos: 1 done, 0 skipped, 0 failed" in redo.stdout
    assert (out / "a" / "clip_depths.npz").stat().st_mtime_ns > written["a/clip_depths.npz"]
    assert (out / "b" / "clip_depths.npz").stat().st_mtime_ns == written["b/clip_depths.npz"]


# Run as the entry script with the dataset's second video held at its first depth map (staged outputs and the
# scratch file exist by then): the test waits for that moment, not for a time, and kills the process there.
HOLD_SECOND_VIDEO = """
import signal, sys
from pathlib import Path
from vda.outputs import writers as outputs
marker, sys.argv = Path(sys.argv[1]), sys.argv[2:]
stores, append = [], outputs.DepthStore.append
def held(self, maps):
    if self not in stores:
        stores.append(self)
    if len(stores) == 2:
        marker.write_text(self.path.name)
        while True:
            signal.pause()
    return append(self, maps)
outputs.DepthStore.append = held
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_killed_run_is_completed_by_the_next(tmp_path, run_cli, random_checkpoint):
    data = tmp_path / "data"
    data.mkdir()
    for index in range(4):
        synthetic_clip(data / f"v{index}.mp4", 10, seed=index)
    out, marker = tmp_path / "out", tmp_path / "held"
    common = ("input=data", "output_dir=out", "output.vis=false", "mlflow.enabled=false")
    args = [sys.executable, "-c", HOLD_SECOND_VIDEO, str(marker), *cli_args(tmp_path, random_checkpoint, *common)[1:]]
    proc = subprocess.Popen(args, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert sorted(p.name for p in out.glob("*_depths.npz")) == ["v0_depths.npz"] and not (out / "summary.csv").exists()
    assert marker.read_text().startswith(".v1_depths.scratch") and (out / marker.read_text()).exists()  # left behind

    rerun = run_cli("run_infer.py", *settings(tmp_path, random_checkpoint), *common)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "4 videos: 3 done, 1 skipped, 0 failed" in rerun.stdout
    assert files_under(out) == ["summary.csv"] + [f"v{index}_depths.npz" for index in range(4)]  # no staged leftovers
    assert [row["status"] for row in read_summary(out / "summary.csv", tmp_path / "data").values()] == ["skipped"] + ["done"] * 3


def test_two_workers_write_the_same_bytes_as_one(tmp_path, run_cli, folder, random_checkpoint, monkeypatch):
    # One intra-op thread per model in both runs: CPU reductions split over a different thread count round
    # differently, which is not what this compares (the worker pool itself must not change a byte).
    (folder / "b" / "broken.mp4").unlink()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the spawned workers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this process: the one-worker run, and the share each of two workers gets
    try:
        common = ("input=data", "output.vis=false", "mlflow.enabled=false", "output.progress=false")
        one = run_cli("run_infer.py", *settings(tmp_path, random_checkpoint), *common, "output_dir=one")
        two = run_cli("run_infer.py", *settings(tmp_path, random_checkpoint), *common, "output_dir=two", "infer.workers=2")
    finally:
        torch.set_num_threads(threads)
    assert one.returncode == 0 and two.returncode == 0, one.stderr[-2000:] + two.stderr[-2000:]
    assert "3 videos: 3 done, 0 skipped, 0 failed" in two.stdout
    names = ["a/clip_depths.npz", "b/clip_depths.npz", "top_depths.npz"]
    assert files_under(tmp_path / "two") == files_under(tmp_path / "one") == sorted(names + ["summary.csv"])
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_submitit_jobs_per_shard_nest_under_one_parent_run(tmp_path, mlflow_uri, folder, random_checkpoint):
    (folder / "b" / "broken.mp4").unlink()
    proc = run_script(
        tmp_path,
        random_checkpoint,
        "hydra/launcher=submitit_local",
        "input=data",
        "output_dir=out",
        "infer.shard=0/2,1/2",
        "output.vis=false",
        "output.progress=false",
        multirun=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    assert files_under(out) == [
        "a/clip_depths.npz",
        "b/clip_depths.npz",
        "summary-shard-0-of-2.csv",
        "summary-shard-1-of-2.csv",
        "top_depths.npz",
    ]
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*/*_result.pkl"))) == 2  # two submitit jobs
    (parent,) = [r for r in runs(tmp_path) if r.data.tags.get("vda.kind") == "sweep"]
    children = [r for r in runs(tmp_path) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(Path(r.data.tags["input"]).relative_to(folder).as_posix() for r in children) == [
        "a/clip.mp4",
        "b/clip.mp4",
        "top.mkv",
    ]
    assert parent.info.status == "FINISHED" and parent.data.tags["jobs.done"] == "3"


# ---------------------------------------------------------------- discovery, shards, resuming (no model)
def test_a_list_file_mirrors_the_folders_its_entries_share(tmp_path, folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    listing = folder / "lists" / "some.txt"
    listing.parent.mkdir()
    listing.write_text("# two clips with one stem\n../b/clip.mp4\n\n%s  # absolute\n../a/clip.mp4\n" % (folder / "top.mkv"))
    items = discover(f"@{listing}")
    assert [(i.path, i.relative.as_posix()) for i in items] == [
        (folder / "a" / "clip.mp4", "a/clip.mp4"),
        (folder / "b" / "clip.mp4", "b/clip.mp4"),
        (folder / "top.mkv", "top.mkv"),
    ]
    with pytest.raises(ConfigError, match="input_glob"):
        discover(f"@{listing}", "*.mp4")
    with pytest.raises(ConfigError, match="cannot read the input list"):
        discover("@nowhere.txt")


def test_folder_glob_and_an_empty_match(tmp_path, folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert [i.relative.as_posix() for i in discover("data")] == ["a/clip.mp4", "b/broken.mp4", "b/clip.mp4", "top.mkv"]
    assert [i.relative.as_posix() for i in discover("data", "*")] == ["top.mkv"]
    assert [i.relative.as_posix() for i in discover("data", "**/clip.mp4")] == ["a/clip.mp4", "b/clip.mp4"]
    with pytest.raises(ConfigError, match="no video in folder"):
        discover("data", "*.webm")
    synthetic_clip(folder / "a" / "clip.mkv", 2)
    with pytest.raises(ConfigError, match="clip.mkv and .*clip.mp4 would write the same outputs"):
        discover("data")


@pytest.mark.parametrize("count", [1, 3, 5, 7])
def test_shards_are_disjoint_and_cover_everything(count):
    items = [DatasetItem(Path(f"/d/{i}.mp4"), Path(f"{i}.mp4")) for i in range(5)]
    shards = [select_shard(items, index, count) for index in range(count)]
    assert sorted((i for shard in shards for i in shard), key=items.index) == items
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(ConfigError, match="infer.shard"):
        parse_shard(text)


def test_done_means_every_enabled_output_exists_and_stale_stages_go(tmp_path):
    (tmp_path / "clip_depths.npz").write_bytes(b"")
    assert outputs_complete(tmp_path, "clip", ["npz"])
    assert not outputs_complete(tmp_path, "clip", ["npz", "vis"])
    stale = [".clip_depths.partial-11.npz", ".clip_vis.partial-11.mp4", ".clip_depths.scratch-11.f32"]
    kept = [".clip_b_depths.partial-12.npz", "clip_depths.npz"]  # another video's stage, a finished output
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".clip_depths_png16.partial-11").mkdir()
    remove_stale(tmp_path, ["clip"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
