"""Entry point of an isolated job: ``python -m vda.bench.worker CONFIG.yaml RESULT.json``.

Reads the job's resolved config (typed again with the scenario's schema), runs the scenario in this fresh process and writes the result as JSON.
It only measures; the parent process records the result in MLflow.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from vda.bench.config import bench_config
from vda.bench.scenarios import run_scenario
from vda.runtime.teardown import skip_final_collection


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m vda.bench.worker CONFIG.yaml RESULT.json\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start_ms = int(time.time() * 1000)
    cfg = bench_config(OmegaConf.load(argv[0]))
    result = run_scenario(cfg)
    result.timed(start_ms, int(time.time() * 1000)).to_json(Path(argv[1]))
    return 0


if __name__ == "__main__":
    skip_final_collection()
    sys.exit(main(sys.argv[1:]))
