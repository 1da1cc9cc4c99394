"""Timing helpers on known work."""

import math
import time

import pytest

from vda.runtime.timing import DeviceTimer, LatencyStats, LatencyTracker, StageTimes, time_first_call


def test_latency_stats_percentiles_on_constructed_samples():
    stats = LatencyStats.from_samples([float(v) for v in range(1, 102)])  # 1..101
    assert stats.p50 == 51.0
    assert stats.p90 == 91.0
    assert stats.p99 == 100.0
    assert stats.mean == 51.0
    assert stats.std == pytest.approx(math.sqrt(850.0))  # population std of 1..n is sqrt((n^2 - 1) / 12)
    assert stats.count == 101
    assert stats.total_s == pytest.approx(5.151)
    assert stats.throughput(8) == pytest.approx(8 / 0.051)


def test_latency_stats_interpolates_between_samples():
    stats = LatencyStats.from_samples([10.0, 20.0])
    assert stats.p50 == 15.0
    assert stats.p90 == 19.0
    assert stats.p99 == pytest.approx(19.9)


def test_latency_stats_refuses_empty():
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_tracker_warms_up_then_meets_min_runs_and_times_sleep():
    calls = []

    def work():
        calls.append(1)
        time.sleep(0.01)

    stats = LatencyTracker(device="cpu", warmup=3, min_runs=5, min_time_s=0.0).measure(work)
    assert stats.count == 5
    assert len(calls) == 3 + 5
    assert all(9.5 <= s < 60.0 for s in stats.samples_ms)
    assert 9.5 <= stats.p50 < 60.0


def test_tracker_keeps_going_until_min_time():
    stats = LatencyTracker(device="cpu", warmup=0, min_runs=2, min_time_s=0.15).measure(lambda: time.sleep(0.005))
    assert stats.count > 2
    assert stats.total_s >= 0.12


def test_tracker_max_runs_caps_but_never_below_min_runs():
    stats = LatencyTracker(device="cpu", warmup=0, min_runs=4, min_time_s=60.0, max_runs=6).measure(lambda: None)
    assert stats.count == 6
    stats = LatencyTracker(device="cpu", warmup=0, min_runs=4, min_time_s=60.0, max_runs=2).measure(lambda: None)
    assert stats.count == 4


def test_device_timer_on_cpu_times_busy_loop():
    with DeviceTimer("cpu") as timer:
        end = time.perf_counter() + 0.03
        while time.perf_counter() < end:
            pass
    assert 29.0 <= timer.elapsed_ms < 200.0


def test_time_first_call_returns_result_and_seconds():
    def load():
        time.sleep(0.05)
        return "model"

    result, seconds = time_first_call(load, "cpu")
    assert result == "model"
    assert 0.045 <= seconds < 0.5


def test_stage_times_accumulate_per_stage():
    stages = StageTimes()
    for _ in range(2):
        with stages.stage("decode"):
            time.sleep(0.01)
    with stages.stage("encoder"):
        time.sleep(0.02)
    stages.add("write", 0.5)
    assert stages.calls == {"decode": 2, "encoder": 1, "write": 1}
    assert 0.019 <= stages.seconds["decode"] < 0.2
    assert 0.019 <= stages.seconds["encoder"] < 0.2
    assert stages.seconds["write"] == 0.5
    assert stages.total == pytest.approx(sum(stages.as_dict().values()))


def test_stage_times_records_stage_that_raised():
    stages = StageTimes()
    with pytest.raises(RuntimeError):
        with stages.stage("head"):
            raise RuntimeError("boom")
    assert stages.calls == {"head": 1}
