"""Depth for video files: ``python run_infer.py input=VIDEO|FOLDER|@LIST [key=value ...]`` (README, "Inference")."""

import sys

import hydra

from vda.cli import one_line_errors
from vda.config import to_object
from vda.pipeline.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
@one_line_errors
def main(cfg) -> None:
    from vda.pipeline.command import run_inference
    from vda.pipeline.dataset import is_dataset, run_dataset

    cfg = to_object(cfg)
    if is_dataset(cfg.input):
        summary = run_dataset(cfg)
        print(summary.line())
        if summary.failed:
            sys.exit(1)
        return
    result = run_inference(cfg)
    print(f"{result.input.name}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} frames/s)")
    for path in result.outputs:
        print(f"  {path}")


if __name__ == "__main__":
    main()
