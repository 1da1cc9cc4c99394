"""Benchmark Video Depth Anything: latency, memory and output equivalence, recorded in MLflow.

python run_bench.py                                   # forward scenario, device=auto
python run_bench.py scenario=equivalence precision=bf16
python run_bench.py -m attention=sdpa,math,xformers precision=fp32,fp16,bf16
"""

import hydra

from vda.bench.command import check_single_run, run_job, summary
from vda.bench.config import register_configs
from vda.entry import one_line_errors
from vda.config import to_object
from vda.runtime.teardown import skip_final_collection

register_configs()
skip_final_collection()  # the process ends without the collector's pass over torch's objects


@hydra.main(version_base="1.3", config_path="conf", config_name="bench")
@one_line_errors
def main(cfg) -> None:
    outcome = run_job(to_object(cfg))
    print(summary(outcome), flush=True)
    check_single_run(outcome)


if __name__ == "__main__":
    main()
