"""Host memory allocator during the model's loop: freed blocks kept for the next window, not handed back.

glibc's ``malloc`` serves every block larger than its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
``munmap``s it when it is freed. The head's full-resolution activations of a window are such blocks (at input
252, 4 frames x 32 channels x 252 x 448 floats is 58 MiB), so every window faults them in again page by page,
zero-filled by the kernel: that is most of the system time of a CPU run. Inside :func:`allocator_scope` with
``reuse``, such blocks come from the heap and the freed heap is kept (``M_MMAP_MAX=0``, ``M_TRIM_THRESHOLD`` at
its maximum), so the next window reuses the same pages; on leaving, glibc's defaults come back and the kept
memory is returned (``malloc_trim``). The price is a higher resident size during the loop (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import sys
from typing import Iterator, Optional

# mallopt(3) parameters and glibc's defaults (malloc.h, malloc/malloc.c)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
MAX_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int


class Allocator(str, enum.Enum):
    auto = "auto"  # reuse where torch allocates the activations, system where a graph runtime holds its own
    reuse = "reuse"  # keep freed memory for the next window (glibc; the C library's default elsewhere)
    system = "system"  # the C library's default

    def resolve(self, own_runtime: bool) -> "Allocator":
        """``auto`` made concrete: a runtime that keeps its own activation buffers (ONNX Runtime, OpenVINO) does
        not re-fault them, so keeping freed blocks would only add to its peak."""
        if self is Allocator.auto:
            return Allocator.system if own_runtime else Allocator.reuse
        return self


def _glibc() -> Optional[ctypes.CDLL]:
    """The process's C library when it is glibc, else None (macOS, Windows, musl: the setting does nothing)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "gnu_get_libc_version") else None


@contextlib.contextmanager
def allocator_scope(allocator: Allocator, own_runtime: bool = False) -> Iterator[bool]:
    """Run the block with ``allocator`` (``auto``: see :meth:`Allocator.resolve`; ``own_runtime``: the model runs
    on a runtime with its own memory); yields whether the setting took effect (``reuse`` on glibc).

    The setting is process-wide for the block's duration (other threads included).
    """
    libc = _glibc() if Allocator(allocator).resolve(own_runtime) is Allocator.reuse else None
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, MAX_TRIM_THRESHOLD)
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


__all__ = ["Allocator", "allocator_scope"]
