"""Glue for the thin entry scripts: the composed config made typed once, with the process set up as it asks
(:func:`typed`); library errors become one line on stderr and exit status 2; SIGINT and SIGTERM end the run
cleanly (outputs of the interrupted work removed) with exit status 130 / 143."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, Callable, TypeVar

from vda.config import to_object
from vda.errors import VDAError
from vda.runtime.allocator import use_allocator
from vda.runtime.signals import Interrupted, interruptible

T = TypeVar("T")
EXIT_USAGE = 2


def typed(cfg: Any) -> Any:
    """The composed Hydra config as its dataclasses (:func:`vda.config.to_object`), with this process's host
    allocator set as ``cfg.allocator`` says (a process-wide setting: entry points and worker processes only)."""
    cfg = to_object(cfg)
    use_allocator(cfg.allocator)
    return cfg


def one_line_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a Hydra task function: a :class:`VDAError` prints ``error: <message>`` and exits 2; a signal
    prints one line and exits 130 (SIGINT) or 143 (SIGTERM), which also stops a multirun after this job."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with interruptible():
                return fn(*args, **kwargs)
        except VDAError as exc:
            logging.getLogger("vda").debug("failure", exc_info=True)
            _exit(f"error: {exc}", EXIT_USAGE)
        except Interrupted as exc:
            _exit(str(exc), exc.exit_status)

    return wrapper


def _exit(line: str, status: int) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    sys.exit(status)
