"""Host memory allocator: keep freed blocks for the next window instead of handing them back to the system.

glibc's ``malloc`` serves every block larger than its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
``munmap``s it when it is freed. The head's full-resolution activations of a window are such blocks (at input
252, 4 frames x 32 channels x 252 x 448 floats is 58 MiB), so every window faults them in again page by page,
zero-filled by the kernel: that is the system time of a CPU run. ``reuse`` serves them from the heap and keeps
the freed heap (``M_MMAP_MAX=0``, ``M_TRIM_THRESHOLD`` at its maximum), so the next window reuses the same pages.
The price is a higher peak (freed blocks are reused, not returned), measured in docs/performance.md.
"""

from __future__ import annotations

import ctypes
import enum
import sys
from typing import Optional

# mallopt(3) parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
MAX_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int


class Allocator(str, enum.Enum):
    reuse = "reuse"  # keep freed memory for the next window (glibc); the C library's default elsewhere
    system = "system"  # the C library's default


def _glibc() -> Optional[ctypes.CDLL]:
    """The process's C library when it is glibc (mallopt with these parameters), else None (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc


def use_allocator(allocator: Allocator) -> bool:
    """Set the host allocator of this process (for the rest of its life); True if the setting took effect.

    ``system`` changes nothing; ``reuse`` takes effect on glibc only and is a no-op elsewhere.
    """
    if Allocator(allocator) is Allocator.system:
        return False
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, MAX_TRIM_THRESHOLD))


__all__ = ["Allocator", "use_allocator"]
