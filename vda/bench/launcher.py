"""Runs a job's measurement, by default in a fresh Python process.

Isolation means one job's peak memory, allocator caches, compiled kernels and thread pools never leak into
the next job of a sweep, whichever Hydra launcher (basic, joblib, submitit) drives the sweep. A process
that dies is still a result: killed by SIGKILL (the kernel's OOM killer) is ``oom``, any other exit ``error``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

import vda
from vda.bench.result import JobResult, Status
from vda.bench.scenarios import run_scenario

logger = logging.getLogger(__name__)

CONFIG_FILE = "job_config.yaml"
RESULT_FILE = "job_result.json"
LOG_FILE = "job_worker.log"
LOG_TAIL_LINES = 5


def _log_tail(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-LOG_TAIL_LINES:])


def run_isolated(cfg: Any, workdir: Path, timeout_s: float = 0.0) -> JobResult:
    """Run the job in ``python -m vda.bench.worker``; config, result and log live in ``workdir``. The result
    carries the worker's own start and end (the process's when it left no result)."""
    start_ms = _now_ms()
    return _run_isolated(cfg, workdir, timeout_s).timed(start_ms, _now_ms())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _run_isolated(cfg: Any, workdir: Path, timeout_s: float) -> JobResult:
    workdir.mkdir(parents=True, exist_ok=True)
    config_path, result_path, log_path = workdir / CONFIG_FILE, workdir / RESULT_FILE, workdir / LOG_FILE
    OmegaConf.save(OmegaConf.structured(cfg), config_path)
    result_path.unlink(missing_ok=True)
    env = dict(os.environ)
    package_root = str(Path(vda.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "vda.bench.worker", str(config_path), str(result_path)]
    logger.info("job in a fresh process, log: %s", log_path)
    with log_path.open("w") as log_file:
        try:
            proc = subprocess.run(
                command, stdout=log_file, stderr=subprocess.STDOUT, env=env, timeout=timeout_s or None
            )
        except subprocess.TimeoutExpired:
            return JobResult(Status.error, f"timed out after {timeout_s:g} s (job.timeout_s); log: {log_path}")
    if proc.returncode == 0 and result_path.exists():
        return JobResult.from_json(result_path)
    if proc.returncode == -signal.SIGKILL:
        return JobResult(
            Status.oom,
            f"the job's process was killed by SIGKILL, most likely by the out-of-memory killer; log: {log_path}",
        )
    return JobResult(
        Status.error, f"the job's process exited with status {proc.returncode}: {_log_tail(log_path)}; log: {log_path}"
    )


def launch(cfg: Any, workdir: Optional[Path] = None) -> JobResult:
    """Measure the job described by ``cfg`` (in a fresh process unless ``job.isolate=false``).

    ``workdir`` receives the isolated job's config, result and log (default: a new temporary folder).
    """
    if not cfg.job.isolate:
        start_ms = _now_ms()
        return run_scenario(cfg).timed(start_ms, _now_ms())
    workdir = workdir or Path(tempfile.mkdtemp(prefix="vda-bench-job-"))
    return run_isolated(cfg, workdir, float(cfg.job.timeout_s))


__all__ = ["launch", "run_isolated"]
