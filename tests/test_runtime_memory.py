"""Memory helpers on known work."""

import threading

import numpy as np

from vda.runtime import memory
from vda.runtime.memory import MemoryTracker, rss_mb, ru_maxrss_mb

SIZE_MB = 200


def test_cpu_peak_rss_rises_by_allocation(monkeypatch):
    # the block is freed once the tracker's sampler has read an RSS that holds it (an event, not a delay)
    seen, wanted = threading.Event(), [float("inf")]
    real = memory.rss_mb

    def watched() -> float:
        value = real()
        if value >= wanted[0]:
            seen.set()
        return value

    monkeypatch.setattr(memory, "rss_mb", watched)
    with MemoryTracker("cpu") as mem:
        wanted[0] = mem.baseline_mb + 0.85 * SIZE_MB
        block = np.ones(SIZE_MB * 1024 * 1024 // 8, dtype=np.float64)  # touched pages, ~200 MiB resident
        assert seen.wait(timeout=60), "the sampler never read the allocation"
        del block
    assert 0.85 * SIZE_MB <= mem.increase_mb <= 1.4 * SIZE_MB
    assert mem.peak_mb >= mem.baseline_mb + 0.85 * SIZE_MB
    assert mem.details["rss_peak_mib"] == mem.peak_mb
    assert ru_maxrss_mb() >= mem.details["rss_peak_mib"] - 1.0


def test_cpu_tracker_without_allocation_stays_flat():
    with MemoryTracker("cpu") as mem:
        sum(range(1000))
    assert mem.increase_mb < 20


def test_ru_maxrss_raises_the_peak_only_when_it_moved_inside_the_region(monkeypatch):
    # ru_maxrss is a process-lifetime maximum (inherited from the parent process on Linux): it says something
    # about the region only when it grew during it; then it catches spikes shorter than the sampling interval.
    readings = iter([100.0, 100.0 + 100 * SIZE_MB])
    monkeypatch.setattr(memory, "ru_maxrss_mb", lambda: next(readings))
    with MemoryTracker("cpu", interval_s=60) as mem:
        pass
    assert mem.peak_mb == 100.0 + 100 * SIZE_MB
    readings = iter([100.0 + 100 * SIZE_MB] * 2)
    with MemoryTracker("cpu", interval_s=60) as mem:
        pass
    assert mem.peak_mb < 100 * SIZE_MB  # the sampled RSS, not the stale lifetime maximum


def test_rss_helpers_agree():
    assert ru_maxrss_mb() >= rss_mb() - 1.0 > 0
