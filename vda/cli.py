"""Glue for the thin entry scripts: library errors become one line on stderr and exit status 2."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

from vda.errors import VDAError

T = TypeVar("T")
EXIT_USAGE = 2


def one_line_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a Hydra task function so a :class:`VDAError` prints ``error: <message>`` and exits 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VDAError as exc:
            logging.getLogger("vda").debug("failure", exc_info=True)
            sys.stderr.write(f"error: {exc}\n")
            sys.stderr.flush()
            sys.exit(EXIT_USAGE)

    return wrapper
