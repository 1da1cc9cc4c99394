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
    from vda.pipeline.main import infer

    outcome = infer(to_object(cfg))
    print("\n".join(outcome.lines))
    if outcome.exit_status:
        sys.exit(outcome.exit_status)


if __name__ == "__main__":
    main()
