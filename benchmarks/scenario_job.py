"""What the figure scripts share: one bench job composed and measured as ``python run_bench.py`` does it, and the
options of a run over a clip."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hydra import compose, initialize_config_dir

from vda.bench.command import check_single_run, run_job
from vda.bench.config import register_configs
from vda.bench.result import JobResult
from vda.config import to_object
from vda.video.synthetic import synthetic_clip

CONF = Path(__file__).resolve().parents[1] / "conf"
register_configs()


def measure(*overrides: str) -> JobResult:
    """The job of ``python run_bench.py <overrides> mlflow.enabled=false``, through :func:`vda.bench.command.run_job`;
    raises :class:`~vda.bench.command.BenchJobFailed` when it did not run."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = to_object(compose("bench", overrides=[*overrides, "mlflow.enabled=false"]))
    outcome = run_job(cfg)
    check_single_run(outcome)
    return outcome.result


def clip_parser(description: str, frames: int, size: tuple[int, int], input_size: int, repeats: int):
    """``--video`` (default: a generated clip of ``--frames`` at ``--width`` x ``--height``), ``--input-size``,
    ``--encoder``, ``--device``, ``--precision``, ``--repeats``, ``--json``; each script adds its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--video", type=Path, help="clip to use (default: a generated one)")
    parser.add_argument("--frames", type=int, default=frames, help="frames of the generated clip")
    parser.add_argument("--width", type=int, default=size[0])
    parser.add_argument("--height", type=int, default=size[1])
    parser.add_argument("--input-size", type=int, default=input_size)
    parser.add_argument("--encoder", default="vits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--json", type=Path, help="also write the report here")
    return parser


def clip_overrides(args, clip: Path) -> list[str]:
    """``clip`` (``--video``, or a generated one) with the network input and runtime of ``args``, as run_bench.py
    overrides of a clip scenario."""
    return [
        f"scenario.input={Path(clip).resolve()}", f"scenario.input_size={args.input_size}", f"encoder={args.encoder}",
        f"device={args.device}", f"precision={args.precision}",
    ]  # fmt: skip


def the_clip(args, workdir: Path, frames: int | None = None) -> Path:
    """``--video``, or a clip of ``frames`` (default ``--frames``) at ``--width`` x ``--height`` generated in ``workdir``."""
    if args.video and frames is None:
        return args.video
    frames = frames or args.frames
    return synthetic_clip(workdir / f"clip{frames}.mp4", frames, args.height, args.width, fps=30)


def emit(report: dict, path: Path | None) -> None:
    """Print the report as JSON, and write it to ``path`` too when given."""
    text = json.dumps(report, indent=2, default=str)
    print(text, flush=True)
    if path:
        path.write_text(text + "\n")
