"""Depth for video files: ``python run_infer.py input=VIDEO|FOLDER|@LIST [key=value ...]`` (README, "Inference")."""

import sys

if __name__ == "__main__":  # before torch's import: MLflow's, in the tracking child, runs beside it
    from vda.tracking.early import start_early

    start_early(sys.argv[1:])

import hydra  # noqa: E402 (the early start above comes first)

from vda.entry import one_line_errors
from vda.config import to_object
from vda.runtime.teardown import skip_final_collection
from vda.infer.command import infer
from vda.infer.config import register_configs

register_configs()
skip_final_collection()  # the process ends without the collector's pass over torch's objects


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
@one_line_errors
def main(cfg) -> None:
    outcome = infer(to_object(cfg))
    print("\n".join(outcome.lines))
    if outcome.exit_status:
        sys.exit(outcome.exit_status)


if __name__ == "__main__":
    main()
