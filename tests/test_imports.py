"""Start-up: the inference command imports only what the run uses (issue 21).

A run with ``backend=torch`` must not import the graph runtimes (ONNX Runtime, OpenVINO, onnx, onnxscript),
xformers, or MLflow/pandas: each of them costs seconds of start-up on a short clip. With tracking on, MLflow runs
in a child process (:mod:`vda.tracking.worker`): the command itself still never imports it.
The run happens in a fresh interpreter (``sys.modules`` of this test process is shared by every test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Only imported when chosen: backend=onnxruntime/openvino (and their export), attention=xformers; MLflow only in
# the process that holds a tracked run.
UNUSED = ("onnxruntime", "openvino", "onnx", "onnxscript", "xformers", "mlflow", "pandas")

PROBE = """
import json, runpy, sys
sys.path.insert(0, {root!r})  # this checkout's vda, not an installed one
sys.argv = ["run_infer.py", *sys.argv[1:]]
try:
    runpy.run_path({script!r}, run_name="__main__")
finally:
    print("VDA " + sys.modules["vda"].__file__)
    print("LOADED " + json.dumps(sorted(name for name in {unused!r} if name in sys.modules)))
"""


@pytest.mark.parametrize("tracking", [False, True], ids=["tracking-off", "tracking-on"])
def test_inference_imports_no_unused_runtime_nor_mlflow(tmp_path, make_video, random_checkpoint, mlflow_uri, tracking):
    video = make_video("clip.mp4", count=4, height=28, width=28)
    probe = PROBE.format(root=str(ROOT), script=str(ROOT / "run_infer.py"), unused=UNUSED)
    proc = subprocess.run(
        [sys.executable, "-c", probe, f"input={video}", "device=cpu", f"model.checkpoint={random_checkpoint}",
         "infer.input_size=28", f"mlflow.enabled={str(tracking).lower()}", f"mlflow.tracking_uri={mlflow_uri}",
         "output.vis=false", "output.progress=false", f"output_dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "clip_depths.npz").is_file()
    assert ("MLflow store: " + mlflow_uri in proc.stdout) is tracking, proc.stdout  # the run was tracked, or not
    assert proc.stdout.split("VDA ", 1)[1].startswith(str(ROOT / "vda")), proc.stdout
    loaded = json.loads(proc.stdout.split("LOADED ", 1)[1].splitlines()[0])
    assert loaded == [], f"imported although unused: {loaded}"
