#!/usr/bin/env bash
# Wall-clock of run_infer.py over one folder of 8 synthetic clips (30 frames, 160x120), infer.workers=1 vs 2,
# interleaved, 2 repeats each (take the best of each). Run from the repository root: bash benchmarks/dataset_workers.sh
set -euo pipefail
root=$(pwd)
work=$(mktemp -d)
cd "$work"
mkdir -p data
PYTHONPATH="$root" python -c "
from vda.video.synthetic import synthetic_clip
for i in range(8): synthetic_clip(f'data/c{i}.mp4', 30, 120, 160, seed=i)
"
for rep in 1 2; do
  for workers in 1 2; do
    rm -rf "out$workers"
    start=$(date +%s.%N)
    PYTHONPATH="$root" python "$root/run_infer.py" input=data "output_dir=out$workers" device=cpu model.checkpoint=random \
      infer.input_size=70 "infer.workers=$workers" output.vis=false output.progress=false mlflow.enabled=false \
      "hydra.run.dir=$work/hydra" 2>/dev/null | tail -1
    echo "workers=$workers rep=$rep wall=$(echo "$(date +%s.%N) - $start" | bc) s"
  done
done
