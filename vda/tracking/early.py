"""The tracking child (:mod:`vda.tracking.worker`), and its start before the command knows its config.

A tracked ``run_infer.py`` spends about 2 s of CPU in the child (MLflow's import, then its SQL store's). Started
when the config is known, that is after torch's import, the child competes with the model's threads for the
cores. :func:`start_early`, called first thing by the entry script, starts it at once and has it import MLflow for
the store the command line names (the default one, ``$MLFLOW_TRACKING_URI`` or ``mlflow.tracking_uri=``) while the
command imports torch, which uses one core. The first :class:`~vda.tracking.runs.LiveRun` of the process takes
it (:func:`take`). A command line that turns tracking off, or only asks Hydra for help, starts nothing; a child
that no run took (tracking off in the resolved config, a refusal first) is killed at exit: it holds no run and
has not touched the store.

Torch-free, like the child itself: it runs before torch is imported.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

from vda.tracking import worker
from vda.tracking.store import tracking_uri

ROOT = Path(__file__).resolve().parents[2]  # the checkout whose vda the child process imports
# Hydra options that only print (help, config, completion): the command runs nothing to track.
PRINT_ONLY = {"--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}
TRACKING_OFF = re.compile(r"^\+{0,2}mlflow\.enabled=(false|no|off|0)$", re.IGNORECASE)
TRACKING_URI = re.compile(r"^\+{0,2}mlflow\.tracking_uri=(.+)$")

_early: Optional[subprocess.Popen] = None


def start_worker() -> subprocess.Popen:
    """The child process, its requests on stdin and answers on stdout (protocol: :mod:`vda.tracking.worker`)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", worker.__name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": path}, start_new_session=True,  # a Ctrl-C in the terminal is not for it
    )


def start_early(argv: Sequence[str]) -> None:
    """Start the child and its ``prepare`` now, unless ``argv`` (the command line's arguments) turns tracking off
    or only prints."""
    global _early
    if _early is not None or any(arg in PRINT_ONLY or TRACKING_OFF.match(arg) for arg in argv):
        return
    named = [m.group(1) for m in map(TRACKING_URI.match, argv) if m and m.group(1) not in ("null", "")]
    _early = start_worker()
    _early.stdin.write(json.dumps({"op": "prepare", "uri": tracking_uri(named[-1] if named else None)}) + "\n")
    _early.stdin.flush()
    atexit.register(_kill_unused)


def take() -> Optional[subprocess.Popen]:
    """The child :func:`start_early` started, once (its ``prepare`` answer still to be read); None if there is none."""
    global _early
    child, _early = _early, None
    return child


def _kill_unused() -> None:
    child = take()
    if child is not None:
        child.kill()
        child.wait()


__all__ = ["start_early", "start_worker", "take"]
