"""Glue for the thin entry scripts: library errors become one line on stderr and exit status 2, with nothing of
the job left in Hydra's output folder (:func:`remove_job_folder`); SIGINT and SIGTERM end the run cleanly
(outputs of the interrupted work removed) with exit status 130 / 143."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Callable, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from vda.errors import VDAError
from vda.runtime.signals import Interrupted, interruptible

T = TypeVar("T")
EXIT_USAGE = 2


def one_line_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a Hydra task function: a :class:`VDAError` removes what Hydra wrote for the job
    (:func:`remove_job_folder`), prints ``error: <message>`` and exits 2; a signal prints one line and exits 130
    (SIGINT) or 143 (SIGTERM), which also stops a multirun after this job."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with interruptible():
                return fn(*args, **kwargs)
        except VDAError as exc:
            logging.getLogger("vda").debug("failure", exc_info=True)
            remove_job_folder()
            _exit(f"error: {exc}", EXIT_USAGE)
        except Interrupted as exc:
            _exit(str(exc), exc.exit_status)

    return wrapper


HYDRA_CONFIGS = ("config.yaml", "hydra.yaml", "overrides.yaml")  # what Hydra saves in hydra.output_subdir
MULTIRUN_CONFIG = "multirun.yaml"  # what Hydra saves in a multirun's hydra.sweep.dir


def remove_job_folder() -> None:
    """Remove the files Hydra wrote for this job (``hydra.output_subdir``'s three configs and the job's log in
    ``hydra.runtime.output_dir``), then that folder and its parents up to the launch directory (not included)
    while they are empty; anything else in them stays (``hydra.run.dir`` may be a folder of the user's). In a
    multirun whose sweep folder holds no other job, its ``multirun.yaml`` and the folder go too.
    With ``hydra.verbose`` set the folder is kept: its log holds the failure's traceback."""
    hydra = HydraConfig.get()
    if hydra.verbose:
        return
    job = Path(hydra.runtime.output_dir)
    log = job / f"{hydra.job.name}.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == log:
            root.removeHandler(handler)
            handler.close()
    log.unlink(missing_ok=True)
    if hydra.output_subdir is not None:
        saved = job / hydra.output_subdir
        for name in HYDRA_CONFIGS:
            (saved / name).unlink(missing_ok=True)
        _remove_if_empty(saved)
    launch = Path(hydra.runtime.cwd).resolve()
    _prune(job.resolve(), launch)
    if hydra.mode == RunMode.MULTIRUN:
        sweep = (launch / hydra.sweep.dir).resolve()
        if sweep.is_dir() and [p.name for p in sweep.iterdir()] == [MULTIRUN_CONFIG]:  # no other job's folder
            (sweep / MULTIRUN_CONFIG).unlink()
            _prune(sweep, launch)


def _prune(folder: Path, launch: Path) -> None:
    """Remove ``folder`` if empty, then each parent inside ``launch`` while it is left empty."""
    while folder != launch and _remove_if_empty(folder) and launch in folder.parents:
        folder = folder.parent


def _remove_if_empty(folder: Path) -> bool:
    """Remove ``folder`` if it is an empty directory; True if it is gone."""
    try:
        folder.rmdir()
    except OSError:  # not empty, or not there
        return not folder.exists()
    return True


def _exit(line: str, status: int) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    sys.exit(status)
