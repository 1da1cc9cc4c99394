"""Peak memory of a region of code, per device.

``with MemoryTracker(device) as mem: ...`` then ``mem.peak_mb`` (MiB) is the headline figure:

* cuda: peak bytes allocated by tensors (``torch.cuda.max_memory_allocated``, counters reset on entry);
  the caching allocator's peak reserved bytes are reported too;
* mps: peak of ``torch.mps.current_allocated_memory()`` sampled every ``interval_s`` (5 ms) in a background
  thread (MPS has no peak counter, so spikes shorter than that are missed), plus the driver's allocated bytes;
* cpu: peak resident set size of the process, sampled in a background thread and corrected with
  ``ru_maxrss`` when the process-lifetime maximum was reached inside the region (it catches spikes
  between samples).

A region that runs another runtime on the device (``other_runtimes=True``: ONNX Runtime on CUDA, whose memory
torch's allocator never sees) reports the sampled device-wide memory in use instead (CUDA: ``mem_get_info``,
other processes on the GPU included), or NaN (unavailable) where the device has no such counter (MPS): never
torch's small figure. Trackers nest: an inner region resets CUDA's peak counters, so the outer region folds
the peak so far into its own before that happens.

The device counters come from the device's record in :mod:`vda.runtime.device`. Host RSS is sampled on every device, since host memory matters on GPU machines too. Peaks are absolute
(the process's footprint, weights included); ``increase_mb`` is the rise over the value at entry.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from typing import Optional

import psutil
import torch

from vda.runtime.device import MIB, facts, synchronize

logger = logging.getLogger(__name__)



def ru_maxrss_mb() -> Optional[float]:
    """Process-lifetime peak RSS from ``getrusage`` (kilobytes on Linux, bytes on macOS); None on Windows."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / MIB if sys.platform == "darwin" else value / 1024.0


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MIB


class _Sampler(threading.Thread):
    """Calls each probe every ``interval_s`` and keeps the maximum of each."""

    def __init__(self, probes: dict, interval_s: float) -> None:
        super().__init__(name="vda-memory-sampler", daemon=True)
        self.probes = probes
        self.interval_s = interval_s
        self.peaks = {name: probe() for name, probe in probes.items()}
        self._stop_event = threading.Event()

    def sample(self) -> None:
        for name, probe in self.probes.items():
            self.peaks[name] = max(self.peaks[name], probe())

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()


DEVICE_USED = "device_used"  # sampled probe of the device-wide memory in use


class MemoryTracker:
    """Context manager measuring peak memory on ``device`` (see the module docstring).

    ``other_runtimes``: the region runs a runtime that allocates device memory outside torch (a graph backend).
    """

    _open: list["MemoryTracker"] = []  # regions open now, outermost first
    _lock = threading.Lock()

    def __init__(self, device: torch.device | str = "cpu", interval_s: float = 0.005, other_runtimes: bool = False) -> None:
        self.device = torch.device(device)
        self.interval_s = interval_s
        self.peak_mb: float = float("nan")
        self.baseline_mb: float = float("nan")
        self.details: dict[str, float] = {}
        self._counters = facts(self.device).memory()
        self._sampler: Optional[_Sampler] = None
        self._ru_start: Optional[float] = None
        self._folded: dict[str, float] = {}  # counter peaks read before an inner region reset them
        self._probes = {"rss": rss_mb, **self._counters.sampled}
        self._headline = self._counters.headline
        if other_runtimes and not self._counters.sees_other_runtimes:
            probe = self._counters.device_wide(self.device)
            self._headline = f"{DEVICE_USED}_peak_mib" if probe is not None else None
            if probe is not None:
                self._probes[DEVICE_USED] = probe

    def _fold(self) -> None:
        """Keep the counter peaks so far: an inner region is about to reset the counters."""
        for key, value in self._counters.read(self.device, self._sampler.peaks).items():
            self._folded[key] = max(self._folded.get(key, value), value)

    def __enter__(self) -> "MemoryTracker":
        synchronize(self.device)
        with self._lock:
            for outer in self._open:
                if outer.device == self.device:
                    outer._fold()
            self._counters.reset(self.device)
            self._open.append(self)
        self._ru_start = ru_maxrss_mb()
        self._sampler = _Sampler(self._probes, self.interval_s)
        self._sampler.start()
        if self._headline == self._counters.headline:
            self.baseline_mb = self._counters.current(self.device, self._sampler.peaks)
        elif self._headline is not None:
            self.baseline_mb = self._sampler.peaks[DEVICE_USED]
        return self

    def __exit__(self, *exc) -> None:
        synchronize(self.device)
        self._sampler.stop()
        with self._lock:
            self._open.remove(self)
        peaks = self._sampler.peaks
        details = {"rss_peak_mib": peaks["rss"]}
        ru_end = ru_maxrss_mb()
        # The lifetime maximum moved inside the region: it is this region's peak, spikes included. (A child
        # process starts with its parent's maximum on Linux, so ru_maxrss alone can say nothing about a region.)
        if ru_end is not None and self._ru_start is not None and ru_end > self._ru_start:
            details["rss_peak_mib"] = max(peaks["rss"], ru_end)
        for key, value in self._counters.read(self.device, peaks).items():
            details[key] = max(value, self._folded.get(key, value))
        if DEVICE_USED in peaks:
            details[f"{DEVICE_USED}_peak_mib"] = peaks[DEVICE_USED]
        self.peak_mb = details[self._headline] if self._headline is not None else math.nan
        self.details = details
        logger.debug("peak memory on %s: %.1f MiB (%s)", self.device, self.peak_mb, details)

    @property
    def increase_mb(self) -> float:
        """Peak minus the value at entry."""
        return self.peak_mb - self.baseline_mb


__all__ = ["MemoryTracker", "ru_maxrss_mb", "rss_mb"]
