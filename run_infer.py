"""Depth for video files: ``python run_infer.py input=VIDEO [key=value ...]`` (see README, "Inference")."""

import hydra

from vda.cli import one_line_errors
from vda.config import to_object
from vda.pipeline.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
@one_line_errors
def main(cfg) -> None:
    from vda.pipeline.command import run_inference

    result = run_inference(to_object(cfg))
    print(f"{result.input.name}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.2f} frames/s)")
    for path in result.outputs:
        print(f"  {path}")


if __name__ == "__main__":
    main()
