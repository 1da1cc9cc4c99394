"""The isolating launcher turns a dead worker process into a result."""

import signal
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vda.bench import launcher
from vda.backends import BACKENDS
from vda.bench.config import bench_config, register_configs
from vda.bench.result import JobResult, Status
from vda.config import to_object

CONF = Path(__file__).resolve().parents[1] / "conf"

CFG = OmegaConf.create({"scenario": {"name": "forward"}, "job": {"isolate": True, "timeout_s": 0}})


def fake_worker(returncode: int, log: str = "", result: JobResult | None = None):
    def run(command, stdout, **kwargs):
        stdout.write(log)
        if result is not None:
            result.to_json(Path(command[-1]))
        return subprocess.CompletedProcess(command, returncode)

    return run


def test_worker_result_is_read_back_with_the_workers_own_times(monkeypatch, tmp_path):
    expected = JobResult(metrics={"peak_memory_mib": 12.0}, samples_ms=[1.0], start_ms=1000, end_ms=2000)
    monkeypatch.setattr(launcher.subprocess, "run", fake_worker(0, result=expected))
    assert launcher.run_isolated(CFG, tmp_path) == expected
    assert OmegaConf.load(tmp_path / launcher.CONFIG_FILE) == CFG


def test_a_dead_worker_is_timed_by_the_launcher(monkeypatch, tmp_path):
    monkeypatch.setattr(launcher.subprocess, "run", fake_worker(-signal.SIGKILL))
    before = launcher._now_ms()
    result = launcher.run_isolated(CFG, tmp_path)
    assert before <= result.start_ms <= result.end_ms <= launcher._now_ms()


def test_worker_killed_by_sigkill_is_oom(monkeypatch, tmp_path):
    monkeypatch.setattr(launcher.subprocess, "run", fake_worker(-signal.SIGKILL))
    result = launcher.run_isolated(CFG, tmp_path)
    assert result.status is Status.oom
    assert "out-of-memory killer" in result.reason


def test_worker_crash_is_an_error_with_the_log_tail(monkeypatch, tmp_path):
    log = "".join(f"line {i}\n" for i in range(10)) + "Segmentation fault\n"
    monkeypatch.setattr(launcher.subprocess, "run", fake_worker(139, log=log))
    result = launcher.run_isolated(CFG, tmp_path)
    assert result.status is Status.error
    assert "status 139" in result.reason and "Segmentation fault" in result.reason
    assert "line 0" not in result.reason  # only the tail
    assert str(tmp_path / launcher.LOG_FILE) in result.reason


def test_stale_result_of_an_earlier_run_is_not_reused(monkeypatch, tmp_path):
    JobResult(metrics={"peak_memory_mib": 1.0}).to_json(tmp_path / launcher.RESULT_FILE)
    monkeypatch.setattr(launcher.subprocess, "run", fake_worker(0))
    assert launcher.run_isolated(CFG, tmp_path).status is Status.error


@pytest.mark.parametrize("isolate", [True, False])
def test_launch_dispatches_on_job_isolate(monkeypatch, tmp_path, isolate):
    calls = []
    monkeypatch.setattr(launcher, "run_isolated", lambda cfg, workdir, timeout: calls.append("isolated") or JobResult())
    monkeypatch.setattr(launcher, "run_scenario", lambda cfg: calls.append("in-process") or JobResult())
    cfg = OmegaConf.merge(CFG, {"job": {"isolate": isolate}})
    launcher.launch(cfg, tmp_path)
    assert calls == (["isolated"] if isolate else ["in-process"])


@pytest.mark.parametrize("backend", BACKENDS.names())
def test_the_saved_config_of_an_isolated_job_keeps_each_choices_options(tmp_path, backend):
    """The worker types the saved config again with each choice's record (its options dataclass)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_object(compose("bench", overrides=["attention=sdpa", "attention.kernel=math", f"backend={backend}"]))
    OmegaConf.save(OmegaConf.structured(cfg), tmp_path / "job.yaml")
    again = bench_config(OmegaConf.load(tmp_path / "job.yaml"))
    assert again == cfg and type(again.backend) is BACKENDS.get(backend).schema
