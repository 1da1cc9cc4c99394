"""Runtime concerns: device, precision, memory and timing."""

from vda.runtime.device import resolve_device, synchronize
from vda.runtime.precision import Precision, autocast, resolve_precision

__all__ = ["Precision", "autocast", "resolve_device", "resolve_precision", "synchronize"]
