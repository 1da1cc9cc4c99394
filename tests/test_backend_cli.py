"""``run_infer.py backend=...``: the graph runtimes give torch's depth through the whole command (in-process, on the
session's graph cache); a missing extra is one line (the real entry script in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vda
from vda.backends import BACKENDS
from vda.bench.agreement import rel_l2
from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("graphs")  # on the worker that holds the session's graph export (test_backends)


def overrides(tmp_path: Path, video: Path, out: str, checkpoint: Path, *extra: str) -> list[str]:
    return [
        f"input={video}",
        f"output_dir={tmp_path / out}",
        "device=cpu",
        "precision=fp32",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        "output.vis=false",
        "mlflow.enabled=false",
        *extra,
    ]


@pytest.mark.parametrize("backend", [r.name for r in BACKENDS.records() if r.value.whole_windows])
def test_graph_backends_give_the_torch_depth_through_run_infer(
    tmp_path, run_cli, clip_factory, tiny_model, random_checkpoint, graph_cache, backend
):
    video = clip_factory(12, seed=2)
    proc = run_cli("run_infer.py", *overrides(tmp_path, video, backend, random_checkpoint, f"backend={backend}"))
    assert proc.returncode == 0, proc.stderr
    depth = np.load(tmp_path / backend / "clip_12x48x64_24fps_s2_depths.npz")["depths"]
    expected = vda.infer_video(tiny_model, video, input_size=28)  # what backend=torch writes (test_structure)
    assert depth.shape == expected.shape and rel_l2(depth, expected) <= 1e-5
    cached = sorted(graph_cache.rglob("manifest.json"))
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
    """The real entry script in its own interpreter, with the openvino package hidden from it."""
    video = write_video(tmp_path / "clip.mp4", synthetic_frames(3, 48, 64))
    args = overrides(tmp_path, video, "out", random_checkpoint, "backend=openvino", f"hydra.run.dir={tmp_path / 'hydra'}")
    env = {**os.environ, "VDA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}  # this checkout's vda
    proc = subprocess.run(
        [sys.executable, "-c", BLOCK, str(ROOT / "run_infer.py"), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: backend=openvino needs the openvino package") and '.[openvino]' in lines[0]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
