#!/usr/bin/env bash
# Whole run_infer.py runs side by side on one generated clip (70 frames, 640x360, input 252, vits fp32, seeded
# weights), alternating: backends (torch, openvino, onnxruntime), modes (offline, stream), outputs (npz only vs
# the defaults + source copy). Prints one line per run with its wall time (start-up included) and the depth
# agreement of the graph backends with torch. Usage: bash benchmarks/side_by_side.sh [WORKDIR]
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/vda-side-by-side-XXXX)}
mkdir -p "$work" && cd "$work" || exit 1
export VDA_CACHE_DIR="$work/cache"
python -c "from vda.video.synthetic import synthetic_clip; synthetic_clip('$work/clip70.mp4', 70, 360, 640, 30)"
python -c "from vda.weights import random_state_dict, save_checkpoint; save_checkpoint(random_state_dict('vits', seed=0), '$work/vits.pth')"
common="input=$work/clip70.mp4 device=cpu precision=fp32 model.checkpoint=$work/vits.pth infer.input_size=252 mlflow.enabled=false output.progress=false output.overwrite=true"
run() {
  local name=$1; shift
  local t0 t1; t0=$(date +%s.%N)
  python "$root/run_infer.py" $common output_dir="$work/out_$name" "$@" hydra.run.dir="$work/hydra/$name" >/dev/null 2>"$work/err_$name.txt"
  local rc=$?; t1=$(date +%s.%N)
  echo "$name rc=$rc wall_s=$(python -c "print(round($t1 - $t0, 2))")"
}
echo "== backends"
run openvino_first_call backend=openvino          # exports and compiles the graphs into the cache
for _ in 1 2; do run torch backend=torch; run openvino backend=openvino; run onnxruntime backend=onnxruntime; done
python - "$work" <<'PY'
import sys
import numpy as np
from vda.bench.agreement import rel_l2
work = sys.argv[1]
torch_depth = np.load(f"{work}/out_torch/clip70_depths.npz")["depths"]
for backend in ("openvino", "onnxruntime"):
    print(backend, "rel L2 vs torch:", rel_l2(np.load(f"{work}/out_{backend}/clip70_depths.npz")["depths"], torch_depth))
PY
echo "== modes"
for _ in 1 2; do run offline mode=offline; run stream mode=stream; done
echo "== outputs"
for _ in 1 2; do run npz_only output.vis=false; run defaults_and_src output.src=true; done
