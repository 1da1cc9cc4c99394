"""``run_infer.py backend=...``: the graph runtimes give torch's depth through the whole command; a missing extra is one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vda.backends import BACKENDS
from vda.bench.agreement import rel_l2
from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]


def infer(tmp_path: Path, video: Path, out: str, checkpoint: Path, *overrides: str, prefix: tuple[str, ...] = ()):
    args = [
        *prefix,
        str(ROOT / "run_infer.py"),
        f"input={video}",
        f"output_dir={tmp_path / out}",
        "device=cpu",
        "precision=fp32",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        "output.vis=false",
        "mlflow.enabled=false",
        f"hydra.run.dir={tmp_path / 'hydra' / out}",
        *overrides,
    ]
    env = {**os.environ, "VDA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}  # this checkout's vda
    return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def torch_depth(tmp_path_factory, random_checkpoint):
    tmp = tmp_path_factory.mktemp("backend-cli")
    video = write_video(tmp / "clip.mp4", synthetic_frames(40, 48, 64, seed=2))
    proc = infer(tmp, video, "torch", random_checkpoint)
    assert proc.returncode == 0, proc.stderr
    return tmp, video, np.load(tmp / "torch" / "clip_depths.npz")["depths"]


@pytest.mark.parametrize("backend", [r.name for r in BACKENDS.records() if r.value.whole_windows])
def test_graph_backends_give_the_torch_depth_through_run_infer(torch_depth, random_checkpoint, backend):
    tmp, video, expected = torch_depth
    proc = infer(tmp, video, backend, random_checkpoint, f"backend={backend}")
    assert proc.returncode == 0, proc.stderr
    depth = np.load(tmp / backend / "clip_depths.npz")["depths"]
    assert depth.shape == expected.shape and rel_l2(depth, expected) <= 1e-5
    cached = sorted((tmp / "cache").rglob("manifest.json"))
    assert cached  # the graphs went to the on-disk cache


BLOCK = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'openvino': raise ImportError('blocked')\n"
    "sys.meta_path.insert(0, Block())\n"
    "import importlib.util\n"
    "_find = importlib.util.find_spec\n"
    "importlib.util.find_spec = lambda name, *a: None if name.split('.')[0] == 'openvino' else _find(name, *a)\n"
    "sys.argv = sys.argv[1:]\n"
    "import runpy; runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def test_a_missing_extra_is_one_line_naming_it(tmp_path, random_checkpoint):
    video = write_video(tmp_path / "clip.mp4", synthetic_frames(3, 48, 64))
    proc = infer(tmp_path, video, "out", random_checkpoint, "backend=openvino", prefix=("-c", BLOCK))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: backend=openvino needs the openvino package") and '.[openvino]' in lines[0]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
