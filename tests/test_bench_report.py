"""The report reads an experiment's runs and writes a Markdown table and PNG charts."""

import shutil
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from vda.bench import report
from vda.bench.config import register_configs
from vda.bench.recorder import BENCH_VIEW, job_record
from vda.bench.result import JobResult, Status
from vda.tracking import runs
from vda.tracking.store import open_store
from vda.tracking.tags import KIND as KIND_TAG

CONF = Path(__file__).resolve().parent.parent / "conf"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def forward_result(p50: float) -> JobResult:
    metrics = {
        "latency_ms_p50": p50,
        "latency_ms_p90": p50 * 1.1,
        "latency_ms_p99": p50 * 1.2,
        "latency_ms_mean": p50,
        "first_call_s": 1.5,
        "throughput_fps": 8000.0 / p50,
        "peak_memory_mib": 700.0,
    }
    params = {
        "scenario.frames": 8,
        "scenario.height": 196,
        "scenario.width": 196,
        "device.resolved": "cpu",
        "precision.resolved": "fp32",
    }
    return JobResult(metrics=metrics, params=params, samples_ms=[p50] * 3)


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_mlflow_db):
    """A store holding a sweep (sdpa ok, xformers unavailable), an older forward run and an equivalence job."""
    register_configs()
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    uri = f"sqlite:///{path}"
    mlflow.set_tracking_uri(uri)

    def cfg(*overrides):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("bench", overrides=["device=cpu", f"mlflow.tracking_uri={uri}", *overrides])

    def record_job(cfg, result, parent=None):
        return runs.write(open_store(cfg.mlflow, BENCH_VIEW), job_record(cfg, result), parent)

    record_job(cfg(), forward_result(999.0))  # older run of the same configuration as the sweep's sdpa job
    client = MlflowClient()
    sweep = client.create_run(client.get_experiment_by_name("vda-bench").experiment_id, tags={KIND_TAG: "sweep"}).info.run_id
    record_job(cfg(), forward_result(500.0), sweep)
    record_job(cfg("attention=xformers"), JobResult(Status.unavailable, "xformers runs on CUDA only"), sweep)
    children = [
        JobResult(
            name="sdpa fp32 vs math fp32",
            params={"attention.name": "sdpa"},
            metrics={"equiv_max_abs_err": 2e-6, "equiv_rel_l2": 1e-7, "equiv_absrel": 3e-7, "equiv_delta1": 1.0},
        ),
        JobResult(
            Status.unavailable, "no xformers", name="xformers fp32 vs math fp32", params={"attention.name": "xformers"}
        ),
    ]
    record_job(
        cfg("scenario=equivalence"),
        JobResult(
            metrics={"peak_memory_mib": 800.0},
            children=children,
            params={"scenario.frames": 8, "scenario.height": 196, "scenario.width": 196, "precision.resolved": "fp32"},
        ),
    )
    yield uri
    mlflow.set_tracking_uri(None)


def test_report_of_latest_configurations(store, tmp_path):
    out = tmp_path / "report"
    assert report.main(["--tracking-uri", store, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert (
        "| forward | vits | cpu | fp32 | sdpa | torch | 1x8x3x196x196 | ok | 500.0 | 550.0 | 600.0 | 500.0 | 16.00 | 1.50 | 700 |"
        in text
    )
    assert "999.0" not in text  # superseded by the newer run of the same configuration
    assert "| vits | cpu | fp32 | sdpa | torch | 1x8x3x196x196 | ok | 2.00e-06 | 1.00e-07 | 3.00e-07 | 1.0000 |" in text
    assert "**unavailable** — xformers runs on CUDA only" in text
    assert "**unavailable** — no xformers" in text
    for name in ("latency.png", "memory.png", "equivalence.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
        assert f"({name})" in text
    assert not (out / "pipeline_stages.png").exists()


def test_report_of_latest_sweep_only(store, tmp_path):
    out = tmp_path / "report"
    report.main(["--tracking-uri", store, "--out", str(out), "--sweep", "latest"])
    text = (out / "report.md").read_text()
    assert "| forward | vits | cpu | auto | xformers | torch | device default | unavailable |" in text
    assert "Equivalence" not in text  # not part of the sweep


def test_report_without_experiment_says_so(store, tmp_path):
    with pytest.raises(SystemExit, match="no experiment 'nope'"):
        report.main(["--tracking-uri", store, "--experiment", "nope", "--out", str(tmp_path / "r")])
