#!/usr/bin/env bash
# Whole-command table (issue 21): run_infer.py with backend=torch (also with infer.allocator=system, the C library's
# default allocator, for the system time), backend=openvino, backend=onnxruntime and precision=bf16, and
# optionally the published pipeline, each under /usr/bin/time -v, alternating, REPS rounds. Prints one line per
# run (wall, user, system seconds, peak RSS, involuntary context switches) and the medians with ratios to vda torch.
#
# Usage: bash benchmarks/whole_command.sh [-c CLIP] [-s INPUT_SIZE] [-r REPS] [-p PUBLISHED_CHECKOUT] [WORKDIR]
#   CLIP: a video (default: a generated 70-frame 320x180 clip); INPUT_SIZE: default 140; REPS: default 2.
#   PUBLISHED_CHECKOUT: a Video-Depth-Anything checkout; its run.py is run with --fp32 and the same seeded
#   weights, copied to its checkpoints/video_depth_anything_vits.pth (an existing file there is kept aside).
# The weights are seeded random (depth meaningless, speed representative); the graph cache is warmed first
# (its export is a one-time cost, reported separately). Run on a quiet machine: times are wall-clock.
set -u -o pipefail
clip="" size=140 reps=2 published=""
while getopts "c:s:r:p:" opt; do
  case $opt in c) clip=$OPTARG ;; s) size=$OPTARG ;; r) reps=$OPTARG ;; p) published=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/vda-whole-command-XXXX)}
mkdir -p "$work" && cd "$work" || exit 1
export VDA_CACHE_DIR="$work/cache"
if [ -z "$clip" ]; then
  clip="$work/clip70.mp4"
  python -c "from vda.video.synthetic import synthetic_clip; synthetic_clip('$clip', 70, 180, 320, 24)" || exit 1
fi
python -c "from vda.weights import random_state_dict, save_checkpoint; save_checkpoint(random_state_dict('vits', seed=0), '$work/vits.pth')" || exit 1
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, bf16: $(grep -o -m1 -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo || echo none)"
echo "date: $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)  clip: $clip  input_size: $size"
common="input=$clip device=cpu encoder=vits model.checkpoint=$work/vits.pth infer.input_size=$size mlflow.enabled=false output.progress=false output.overwrite=true"

timed() {  # NAME COMMAND...: one run under /usr/bin/time -v, one line appended to $work/runs.txt
  local name=$1; shift
  /usr/bin/time -v -o "$work/time_$name.txt" "$@" >"$work/log_$name.txt" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ]; then  # a failed run has no time worth tabulating
    echo "$name failed (exit $rc); the end of its log, $work/log_$name.txt:" >&2
    tail -n 5 "$work/log_$name.txt" >&2
    exit "$rc"
  fi
  python - "$name" "$rc" "$work/time_$name.txt" <<'PY' | tee -a "$work/runs.txt"
import re, sys
name, rc, text = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
def field(label):
    return re.search(rf"{label}: (.*)", text).group(1).strip()
h, m, s = (["0", "0"] + field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":"))[-3:]
wall = int(h) * 3600 + int(m) * 60 + float(s)
user, system = field("User time .seconds."), field("System time .seconds.")
peak, switches = int(field(r"Maximum resident set size \(kbytes\)")) // 1024, field("Involuntary context switches")
print(f"{name} rc={rc} wall_s={wall:.1f} user_s={user} sys_s={system} peak_mib={peak} invol_cs={switches}")
PY
}
vda() { local name=$1; shift; timed "$name" python "$root/run_infer.py" $common output_dir="$work/out_$name" hydra.run.dir="$work/hydra/$name" "$@"; }

vda openvino_export backend=openvino >/dev/null  # fills the graph cache (one-time export + conversion; the ONNX
# graphs it converts are the onnxruntime backend's entry too)
if [ -n "$published" ]; then
  ckpt="$published/checkpoints/video_depth_anything_vits.pth"
  mkdir -p "$published/checkpoints"
  [ -e "$ckpt" ] && [ ! -e "$ckpt.vda-kept" ] && mv "$ckpt" "$ckpt.vda-kept"
  cp "$work/vits.pth" "$ckpt"
  trap '[ -e "$ckpt.vda-kept" ] && mv "$ckpt.vda-kept" "$ckpt"' EXIT
fi
: >"$work/runs.txt"
for _ in $(seq "$reps"); do
  vda vda_torch backend=torch precision=fp32
  vda vda_system backend=torch precision=fp32 infer.allocator=system
  vda vda_openvino backend=openvino precision=fp32
  vda vda_onnxruntime backend=onnxruntime precision=fp32
  vda vda_bf16 backend=torch precision=bf16
  if [ -n "$published" ]; then
    (cd "$published" && timed published python run.py --input_video "$clip" --output_dir "$work/out_published" \
      --encoder vits --input_size "$size" --fp32) || exit 1
  fi
done
python - "$work/runs.txt" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    runs.setdefault(name, []).append({k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", rest)})
med = {n: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "sys_s", "user_s", "peak_mib")} for n, rs in runs.items()}
base = med["vda_torch"]
print(f"{'run':16s} {'wall s':>8s} {'user s':>8s} {'sys s':>7s} {'peak MiB':>9s} {'faster than torch':>18s} {'peak vs torch':>14s}")
for name, m in med.items():
    print(f"{name:16s} {m['wall_s']:8.1f} {m['user_s']:8.1f} {m['sys_s']:7.1f} {m['peak_mib']:9.0f} "
          f"{base['wall_s'] / m['wall_s']:17.2f}x {m['peak_mib'] / base['peak_mib']:13.2f}x")
PY
