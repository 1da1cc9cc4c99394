"""Start-up of the inference command: time from the command's start to its first depth maps, and where it goes.

Fresh processes, alternating, ``--repeats`` rounds (a generated clip of one window unless ``--video``; seeded
random weights):

1. ``python -c "import torch"``: the floor every torch program pays;
2. ``python run_infer.py --help``: the command's imports (Hydra, vda) on top of it;
3. ``python run_infer.py input=CLIP mlflow.enabled=false``: the whole run; ``first_depth_s`` is the command's own
   log line (process start to the first depth maps, imports and model load included);
4. the same with tracking on (a store in the work folder, created by a first run that is reported apart).

Then one ``python -X importtime run_infer.py --help``: the import time of each package (its own modules only).

    python -m benchmarks.figure_startup                    # 32 frames 320x180, input 140, 3 rounds
    python -m benchmarks.figure_startup --video clip.mp4 --input-size 518 --repeats 5
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.scenario_job import clip_parser, emit, the_clip

ROOT = Path(__file__).resolve().parents[1]
FIRST_DEPTH = re.compile(r"first depth maps ([\d.]+) s after the process started")


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one fresh process and its output; a failed run stops the figure."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:3])} ... failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds, done.stdout + done.stderr


def infer_args(args, clip: Path, workdir: Path, tracking: bool) -> list[str]:
    return [
        sys.executable, str(ROOT / "run_infer.py"), f"input={clip}", "model.checkpoint=random", f"encoder={args.encoder}",
        f"device={args.device}", f"precision={args.precision}", f"infer.input_size={args.input_size}",
        f"mlflow.enabled={str(tracking).lower()}", f"mlflow.tracking_uri=sqlite:///{workdir / 'mlflow.db'}",
        f"output_dir={workdir / 'depth'}", "output.overwrite=true", "output.progress=false",
        f"hydra.run.dir={workdir / 'hydra'}",
    ]  # fmt: skip


def import_breakdown(workdir: Path) -> dict[str, float]:
    """Import seconds of ``run_infer.py --help`` by package: each module's own time (its imports excluded) summed
    per top-level package, over 10 ms, and the total."""
    _, output = timed([sys.executable, "-X", "importtime", str(ROOT / "run_infer.py"), "--help"], workdir)
    totals: dict[str, float] = {}
    for line in output.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *([\w.]+)$", line)
        if match:
            package = match.group(2).split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1e6
    shown = {name: round(s, 3) for name, s in sorted(totals.items(), key=lambda kv: -kv[1]) if s >= 0.01}
    return {**shown, "total": round(sum(totals.values()), 3)}


def main() -> None:
    parser = clip_parser(__doc__.split("\n\n")[0], frames=32, size=(320, 180), input_size=140, repeats=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vda-figure-startup-") as tmp:
        workdir = Path(tmp)
        clip = the_clip(args, workdir)
        first_use, _ = timed(infer_args(args, clip, workdir, tracking=True), workdir)  # creates the store
        runs = {name: [] for name in ("import_torch", "help", "infer_tracking_off", "infer_tracking_on")}
        first = {"infer_tracking_off": [], "infer_tracking_on": []}
        for _ in range(args.repeats):
            runs["import_torch"].append(timed([sys.executable, "-c", "import torch"], workdir)[0])
            runs["help"].append(timed([sys.executable, str(ROOT / "run_infer.py"), "--help"], workdir)[0])
            for tracking in (False, True):
                name = f"infer_tracking_{'on' if tracking else 'off'}"
                seconds, output = timed(infer_args(args, clip, workdir, tracking), workdir)
                runs[name].append(seconds)
                first[name].append(float(FIRST_DEPTH.search(output).group(1)))
        imports = import_breakdown(workdir)
    median = {name: round(statistics.median(values), 2) for name, values in runs.items()}
    emit(
        {
            "settings": {**vars(args), "clip": str(clip)},
            "median_s": median,
            "first_depth_median_s": {name: round(statistics.median(v), 2) for name, v in first.items()},
            "help_over_import_torch_s": round(median["help"] - median["import_torch"], 2),
            "tracking_on_over_off_s": round(median["infer_tracking_on"] - median["infer_tracking_off"], 2),
            "infer_tracking_on_first_use_s": round(first_use, 2),
            "runs_s": {name: [round(v, 2) for v in values] for name, values in runs.items()},
            "imports_s": imports,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
