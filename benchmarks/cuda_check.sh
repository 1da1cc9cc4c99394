#!/usr/bin/env bash
# The CUDA checks of docs/devices.md in one run, meant to take under 8 minutes on one recent GPU.
# Run from the repository root:  bash benchmarks/cuda_check.sh [OUT]   (OUT defaults to ./cuda_check)
# OUT gets: device.txt (GPU, capability, torch/CUDA versions), one log per step, mlflow.db (every job, also the
# ones that cannot run, with the reason) and report/ (report.md and the charts of python -m vda.bench.report).
# Seeded random weights: speed and equivalence do not depend on trained values. Every job is stopped after
# job.timeout_s; a step that fails is logged and the next one still runs.
set -uo pipefail
out=$(realpath -m "${1:-cuda_check}")
mkdir -p "$out"
uri="sqlite:///$out/mlflow.db"
common=(device=cuda model.checkpoint=random "mlflow.tracking_uri=$uri" job.timeout_s=150)

python - >"$out/device.txt" 2>&1 <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i}", torch.cuda.get_device_name(i), "capability", torch.cuda.get_device_capability(i))
EOF
cat "$out/device.txt"

step() {  # step NAME ARGS...: one run_bench.py command, logged to OUT/NAME.log
    local name=$1
    shift
    local start=$SECONDS
    python run_bench.py "$@" "${common[@]}" "hydra.run.dir=$out/hydra/$name" "hydra.sweep.dir=$out/hydra/$name" \
        >"$out/$name.log" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s (log: $out/$name.log)"
}

# 1. attention x precision on the reference workload (vitl, one 32-frame window at 518 x 518)
step sweep -m encoder=vitl attention=sdpa,xformers,math precision=fp32,fp16,bf16 \
    scenario.warmup=2 scenario.min_runs=5 scenario.min_time_s=2
# 2. the SDPA kernels one by one in half precision (flash/cuDNN run the fp32 temporal blocks on efficient/math);
#    the report labels them sdpa:flash, sdpa:efficient, sdpa:cudnn
step kernels -m encoder=vitl attention.kernel=flash,efficient,cudnn precision=fp16,bf16 \
    scenario.warmup=2 scenario.min_runs=5 scenario.min_time_s=2
# 3. depth of every implementation against math fp32 (TF32 off), per precision
step equivalence -m scenario=equivalence encoder=vitl precision=fp32,fp16,bf16
# 4. torch.compile with CUDA graphs (reduce-overhead) against eager, fp16 (vits: compiling vitl takes minutes)
step eager encoder=vits precision=fp16 scenario.warmup=3 scenario.min_runs=10 scenario.min_time_s=2
step compile encoder=vits precision=fp16 backend=compile backend.mode=reduce-overhead \
    scenario.warmup=3 scenario.min_runs=10 scenario.min_time_s=2
# 5. a 720p video through the whole pipeline (decode, preprocess, encoder, head, align, write), per stage
step pipeline scenario=pipeline encoder=vitl precision=fp16 scenario.clip_frames=96 scenario.clip_height=720 \
    scenario.clip_width=1280 scenario.repeats=1

python -m vda.bench.report --tracking-uri "$uri" --out "$out/report" >"$out/report.log" 2>&1
echo "report: exit $? ($out/report/report.md)"
