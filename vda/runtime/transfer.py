"""Device -> host copies of depth maps that do not stall the model's thread.

On CUDA a window's depth is copied into a freshly allocated pinned (page-locked) host buffer with
``non_blocking=True`` and a CUDA event is recorded after the copy on the current stream; the writer thread
waits on that event before it reads the buffer, so the model thread queues the next window at once.
PyTorch's caching host allocator recycles the pinned buffers once their event has completed. The device
tensor may be freed right after :meth:`HostCopy.start`: the caching allocator only reuses its memory for
work queued later on the same stream, i.e. after the copy.

Everywhere else the copy is a plain synchronous ``.cpu()`` (on MPS an asynchronous copy into pageable
memory is not safe; on CPU it is no copy at all).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vda.runtime.device import facts


def uses_pinned_copy(device: torch.device) -> bool:
    """Whether depth on ``device`` is copied through pinned memory with ``non_blocking=True`` (CUDA only)."""
    return facts(device).async_copies


class PendingCopy:
    """A host copy that may still be in flight; :meth:`wait` returns it as a float32 ``[k, H, W]`` array."""

    def __init__(self, host: torch.Tensor, event: Optional["torch.cuda.Event"] = None) -> None:
        self.host = host
        self.event = event

    def wait(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
        return self.host.numpy()


class HostCopy:
    """Start device -> host copies of float32 depth ``[k, H, W]`` on ``device`` (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self.pinned = uses_pinned_copy(self.device)

    def start(self, depth: torch.Tensor) -> PendingCopy:
        depth = depth.float()
        if not self.pinned:
            return PendingCopy(depth.cpu())
        host = torch.empty(depth.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(depth, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(depth.device))
        return PendingCopy(host, event)


__all__ = ["HostCopy", "PendingCopy", "uses_pinned_copy"]
