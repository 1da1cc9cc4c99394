"""SIGINT/SIGTERM as an exception, so that an interrupted run cleans up and exits with the usual status."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as shells report


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM inside :func:`interruptible`.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that ``except Exception`` blocks do not swallow it;
    cleanup in ``finally`` / ``except BaseException`` runs, then the entry point exits with
    :attr:`exit_status`.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signal.Signals(signum)
        self.exit_status = EXIT_STATUS.get(self.signum, 128 + int(signum))
        super().__init__(f"interrupted by {self.signum.name}; partial outputs were removed")


@contextlib.contextmanager
def interruptible(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread when one of ``signums`` arrives; the previous handlers
    are restored on exit. The first signal raises; repeats while the cleanup runs are ignored.

    Signal handlers can only be set from the main thread; elsewhere this context changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame) -> None:
        if received:
            return
        received.append(signum)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def stop_on_signals(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[threading.Event]:
    """For sources that end when the user says so (a live stream): the first signal sets the returned event, so
    the reader stops and what was processed is finalised; a second one raises :class:`Interrupted`."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame) -> None:
        if stop.is_set():
            raise Interrupted(signum)
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


__all__ = ["EXIT_STATUS", "Interrupted", "interruptible", "stop_on_signals"]
