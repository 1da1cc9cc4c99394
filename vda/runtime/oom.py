"""Device out-of-memory handling for inference: one retry with a smaller head footprint, then a typed error."""

from __future__ import annotations

import gc
import logging
from typing import Callable, Optional, TypeVar

import torch
from torch import nn

from vda.errors import DeviceMemoryError
from vda.runtime.device import facts

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises :class:`torch.OutOfMemoryError`; MPS a ``RuntimeError`` saying "out of memory"."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def release_cached_memory(device: torch.device) -> None:
    """Give the allocator's cached blocks back so that the retry starts from live tensors only."""
    gc.collect()
    facts(device).empty_cache()


class OOMGuard:
    """Runs inference calls; on device OOM, retries once with a smaller footprint.

    The head decodes its full-resolution stages ``micro_batch`` frames at a time (exact, per frame), so a
    retry with ``micro_batch = 1`` gives the same depth with a smaller peak; the lowered micro-batch stays
    for the following windows (they have the same size). Calls that are not the head pass their own
    ``smaller`` variant (the encoder, one frame at a time). A second OOM raises :class:`DeviceMemoryError`
    naming the options that shrink the work.
    """

    def __init__(self, model: nn.Module, input_size: int) -> None:
        self.model = model
        # the network's head (its micro-batch can shrink); None for models without one (stubs, exported graphs)
        self.head = getattr(model, "head", None)
        self.input_size = input_size
        self.retries = 0

    def _device(self) -> torch.device:
        return self.model.device

    def _error(self, during: str) -> DeviceMemoryError:
        return DeviceMemoryError(
            f"out of {self._device().type} memory {during} at infer.input_size={self.input_size}, "
            "even with the head decoding one frame at a time; lower infer.input_size= or infer.max_res="
        )

    def call(self, fn: Callable[..., T], *args, smaller: Optional[Callable[..., T]] = None) -> T:
        """``fn(*args)``; after an OOM, ``smaller(*args)`` if given (e.g. the encoder one frame at a time),
        else ``fn(*args)`` again with the head's micro-batch at 1."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - anything but an OOM is re-raised as is
            if not is_out_of_memory(exc):
                raise
        # retried outside the except block, so the failed attempt's frames (and tensors) are freed
        device = self._device()
        release_cached_memory(device)
        if smaller is not None:
            logger.warning("out of %s memory; retrying one frame at a time", device.type)
        elif self.head is None or self.head.micro_batch == 1:
            raise self._error("in inference") from None
        else:
            micro_batch = self.head.micro_batch
            logger.warning("out of %s memory; retrying with the head's micro-batch %d -> 1", device.type, micro_batch)
            self.head.micro_batch = 1
        self.retries += 1
        try:
            return (smaller or fn)(*args)
        except Exception as exc:  # noqa: BLE001
            if not is_out_of_memory(exc):
                raise
        release_cached_memory(device)
        raise self._error("after the retry") from None


__all__ = ["OOMGuard", "is_out_of_memory", "release_cached_memory"]
