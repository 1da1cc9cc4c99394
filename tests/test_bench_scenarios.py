"""Each scenario logs the dashboard metrics to a temporary MLflow store; failures are recorded, not raised."""

import shutil
from pathlib import Path

import numpy as np

import mlflow
import pytest
import torch
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from conftest import decode_all

from vda.backends import BACKENDS, BackendConfig, backend_status
from vda.bench.command import BenchJobFailed, check_single_run, run_job, summary
from vda.bench.config import register_configs
from vda.bench.recorder import SAMPLES_METRIC
from vda.tracking.tags import KIND as KIND_TAG
from vda.tracking.tags import PARENT as PARENT_TAG
from vda.bench.result import JobResult, Status, from_exception
from vda import StreamingDepth, build_model
from vda.config import to_object
from vda.depth.engine import WindowedDepth
from vda.video.synthetic import synthetic_frames, write_video

CONF = Path(__file__).resolve().parent.parent / "conf"
# One CPU thread: fast and steady on a shared 2-core machine (two threads stall when a core is busy).
BASE = ["encoder=vits", "device=cpu", "job.isolate=false", "job.threads=1"]
WINDOW = ["scenario.frames=2", "scenario.height=28", "scenario.width=28"]
FAST_TIMING = [*WINDOW, "scenario.warmup=1", "scenario.min_runs=3", "scenario.min_time_s=0"]
LATENCY_METRICS = {
    "latency_ms_p50",
    "latency_ms_p90",
    "latency_ms_p99",
    "latency_ms_mean",
    "first_call_s",
    "throughput_fps",
    "peak_memory_mib",
}
EQUIV_METRICS = {"equiv_max_abs_err", "equiv_rel_l2", "equiv_absrel", "equiv_delta1"}
ENV_TAGS = {"device", "device_name", "cpu", "torch", "cuda", "xformers", "python"}


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_mlflow_db):
    """One temporary sqlite store for the module (a copy of the session's initialised one)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    return f"sqlite:///{path}"


@pytest.fixture
def bench(store):
    """``bench(*overrides)`` -> (outcome, client): one in-process job recorded in the temporary store."""
    register_configs()
    uri = store

    def run(*overrides):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("bench", overrides=[*BASE, f"mlflow.tracking_uri={uri}", *overrides])
        outcome = run_job(to_object(cfg))
        return outcome, MlflowClient(tracking_uri=uri)

    yield run
    mlflow.set_tracking_uri(None)


def test_forward_logs_latency_and_memory_metrics(bench):
    outcome, client = bench("scenario=forward", *FAST_TIMING)
    assert outcome.result.status is Status.ok, outcome.result.reason
    run = client.get_run(outcome.run_id)
    assert LATENCY_METRICS <= set(run.data.metrics)
    assert run.data.tags["status"] == "ok"
    assert run.data.tags[KIND_TAG] == "job"
    assert ENV_TAGS <= set(run.data.tags)
    assert run.data.tags["device"] == "cpu"
    params = run.data.params
    assert params["encoder.name"] == "vits"
    assert params["attention.name"] == "sdpa"
    assert params["model.checkpoint"] == "random"
    assert (params["scenario.frames"], params["scenario.height"]) == ("2", "28")
    assert params["precision.resolved"] == "fp32"  # precision=auto on cpu
    samples = client.get_metric_history(outcome.run_id, SAMPLES_METRIC)
    assert len(samples) == run.data.metrics["latency_runs"] >= 3
    m = run.data.metrics
    assert 0 < m["latency_ms_p50"] <= m["latency_ms_p90"] <= m["latency_ms_p99"]
    assert m["throughput_fps"] == pytest.approx(2 * 1000.0 / m["latency_ms_mean"], rel=1e-3)  # 4 significant digits
    assert m["peak_memory_mib"] > 50
    assert "p50" in summary(outcome)
    logged = client.download_artifacts(outcome.run_id, "config.yaml")
    assert "kernel: auto" in Path(logged).read_text()  # the resolved config travels with the run


def test_forward_fills_null_sizes_with_the_cpu_default(bench):
    outcome, client = bench(*FAST_TIMING, "scenario.height=null", "scenario.width=null")
    assert outcome.result.status is Status.ok, outcome.result.reason
    params = client.get_run(outcome.run_id).data.params
    assert (params["scenario.height"], params["scenario.width"]) == ("196", "196")


def test_equivalence_logs_one_nested_run_per_implementation(bench):
    outcome, client = bench("scenario=equivalence", *WINDOW)
    job = client.get_run(outcome.run_id)
    assert job.data.tags["status"] == "ok"
    assert "peak_memory_mib" in job.data.metrics
    children = client.search_runs([job.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{outcome.run_id}'")
    by_name = {run.data.params["attention.name"]: run for run in children}
    assert set(by_name) == {"sdpa", "math", "xformers"}
    for name in ("sdpa", "math"):
        run = by_name[name]
        assert run.data.tags["status"] == "ok"
        assert run.data.tags[KIND_TAG] == "implementation"
        assert EQUIV_METRICS <= set(run.data.metrics)
    assert by_name["sdpa"].data.metrics["equiv_rel_l2"] < 1e-5
    assert by_name["math"].data.metrics["equiv_max_abs_err"] == 0.0  # the reference itself in fp32
    assert by_name["sdpa"].data.metrics["equiv_delta1"] == 1.0
    xformers = by_name["xformers"].data.tags
    assert xformers["status"] == "unavailable"
    assert "xformers" in xformers["status_reason"]


def test_equivalence_at_bf16_measures_the_precision_loss(bench):
    outcome, client = bench("scenario=equivalence", *WINDOW, "precision=bf16", "scenario.implementations=[math]")
    (child,) = outcome.result.children
    assert child.status is Status.ok
    assert 1e-4 < child.metrics["equiv_rel_l2"] < 0.2
    assert child.name == "math bf16 vs math fp32"


PIPELINE = [
    "scenario=pipeline",
    "scenario.clip_frames=6",
    "scenario.clip_height=28",
    "scenario.clip_width=42",
    "scenario.input_size=28",
    "scenario.vis=false",
]
STAGES = {"decode", "preprocess", "encoder", "head", "align", "write"}


def test_pipeline_logs_throughput_and_stage_split(bench):
    outcome, client = bench(*PIPELINE)
    assert outcome.result.status is Status.ok, outcome.result.reason
    run = client.get_run(outcome.run_id)
    m = run.data.metrics
    assert {"throughput_fps", "first_call_s", "peak_memory_mib"} <= set(m)
    assert {f"stage_{stage}_s" for stage in STAGES} <= set(m)
    assert m["frames"] == 6
    assert m["throughput_fps"] == pytest.approx(6 / m["duration_s"], rel=1e-3)  # 4 significant digits
    assert sum(m[f"stage_{stage}_fraction"] for stage in STAGES) == pytest.approx(1.0, rel=1e-3)
    assert m["stage_encoder_s"] > 0 and m["stage_head_s"] > 0
    assert m["scene_cuts"] == 0 and m["stage_scene_cuts_s"] == 0 and m["windows"] == 1  # cuts off by default
    assert run.data.params["video.size"] == "42x28"
    assert "seconds per stage" in summary(outcome)


def test_pipeline_scene_cuts_split_the_clip_and_time_the_detector(bench, tmp_path):
    """A hard cut in the middle: two shots, each on its own window, and the detector's seconds in its stage."""
    first = synthetic_frames(6, 28, 42, seed=0)
    second = np.ascontiguousarray(synthetic_frames(6, 28, 42, seed=7)[:, ::-1, :, ::-1])  # another scene
    clip = write_video(tmp_path / "cut.mp4", np.concatenate([first, second]))
    outcome, client = bench(*PIPELINE, f"scenario.input={clip}", "scenario.scene_cuts=true")
    assert outcome.result.status is Status.ok, outcome.result.reason
    m = client.get_run(outcome.run_id).data.metrics
    assert m["frames"] == 12 and m["scene_cuts"] == 1 and m["windows"] == 2
    assert m["stage_scene_cuts_s"] > 0


def test_pipeline_missing_input_is_an_error_result(bench, tmp_path):
    outcome, client = bench(*PIPELINE, f"scenario.input={tmp_path / 'missing.mp4'}")
    assert outcome.result.status is Status.error
    assert "missing.mp4" in client.get_run(outcome.run_id).data.tags["status_reason"]


def test_unavailable_attention_is_recorded_not_raised(bench):
    outcome, client = bench("attention=xformers", *FAST_TIMING)
    assert outcome.result.status is Status.unavailable
    run = client.get_run(outcome.run_id)
    assert run.data.tags["status"] == "unavailable"
    assert "xformers" in run.data.tags["status_reason"]
    assert run.info.status == "FINISHED"
    with pytest.raises(BenchJobFailed, match="unavailable"):
        check_single_run(outcome)


# no machine has both: the one this machine lacks (cuda on a Mac or here, mps on a CUDA machine)
ABSENT_DEVICE = "mps" if torch.cuda.is_available() else "cuda"


def test_unavailable_device_is_recorded(bench):
    outcome, client = bench(f"device={ABSENT_DEVICE}", *FAST_TIMING)
    assert outcome.result.status is Status.unavailable
    tags = client.get_run(outcome.run_id).data.tags
    assert tags["device"] == ABSENT_DEVICE
    assert ABSENT_DEVICE in tags["status_reason"]


def test_isolated_job_gives_the_same_metrics_and_honours_timeout(bench):
    outcome, client = bench("job.isolate=true", *FAST_TIMING)
    assert outcome.result.status is Status.ok, outcome.result.reason
    assert LATENCY_METRICS <= set(client.get_run(outcome.run_id).data.metrics)
    outcome, client = bench(*WINDOW, "job.isolate=true", "job.timeout_s=0.01")
    assert outcome.result.status is Status.error
    assert "timed out" in outcome.result.reason
    assert client.get_run(outcome.run_id).info.status == "FAILED"


@pytest.mark.parametrize(
    "exc, status",
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), Status.oom),
        (RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), Status.oom),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"), Status.oom),
        (MemoryError(), Status.oom),
        (ValueError("bad\nsecond line"), Status.error),
    ],
)
def test_exceptions_map_to_statuses(exc, status):
    result = from_exception(exc)
    assert result.status is status
    assert "\n" not in result.reason


def test_result_round_trips_through_json(tmp_path):
    child = JobResult(Status.unavailable, "no xformers", name="xformers fp32 vs math fp32")
    result = JobResult(
        metrics={"peak_memory_mib": 1.5}, params={"scenario.frames": 8}, samples_ms=[1.0, 2.0], children=[child]
    )
    result.to_json(tmp_path / "r.json")
    assert JobResult.from_json(tmp_path / "r.json") == result


SMALL_CLIP = ["scenario.clip_frames=6", "scenario.clip_height=48", "scenario.clip_width=64", "scenario.input_size=28"]


def test_stream_logs_per_frame_latency_and_the_gap_to_offline(bench, make_video):
    clip = make_video("stream.mp4", count=6, height=48, width=64)
    outcome, client = bench("scenario=stream", *SMALL_CLIP, f"scenario.input={clip}")
    assert outcome.result.status is Status.ok, outcome.result.reason
    metrics = client.get_run(outcome.run_id).data.metrics
    assert {"latency_ms_p50", "latency_ms_p99", "first_frame_s", "stream_state_mib", "peak_memory_mib"} <= set(metrics)
    assert metrics["latency_runs"] == 4  # 6 frames, 2 of warm-up
    assert metrics["offline_s"] > 0
    assert metrics["stream_over_offline_s"] == pytest.approx(sum(outcome.result.samples_ms) / 1000 / outcome.result.metrics["offline_s"], abs=1e-3)
    # the gap, recomputed here: the same weights (bench default: checkpoint=random, seed 0), both modes, numpy maths
    frames = list(decode_all(clip))
    model = build_model("vits", device="cpu", precision="fp32", checkpoint="random", seed=0)
    with torch.inference_mode():
        stream = StreamingDepth(model, 28)
        streamed = np.stack([stream.step(frame) for frame in frames]).astype(np.float64)
        offline = torch.cat(list(WindowedDepth(model, 28).run(iter(frames)))).double().numpy()
    valid = offline > 0
    ratio = np.maximum(streamed[valid] / offline[valid], offline[valid] / streamed[valid])
    absrel = np.mean(np.abs(streamed[valid] - offline[valid]) / offline[valid])
    assert absrel > 1e-3  # the two modes differ on random weights, so the comparison below can tell them apart
    # (the job ran on one thread, this on two: float sums differ in the last bits; absrel divides by small depths)
    assert metrics["stream_vs_offline_absrel"] == pytest.approx(absrel, rel=1e-3)
    assert metrics["stream_vs_offline_delta1"] == pytest.approx(np.mean(ratio < 1.25), abs=1e-2)


def test_pipeline_with_the_no_model_measures_the_io_ceiling(bench, tmp_path):
    kept = tmp_path / "kept"
    outcome, client = bench(
        "scenario=pipeline", "scenario.no_model=true", *SMALL_CLIP, "scenario.src=true", f"scenario.keep_outputs={kept}"
    )
    assert outcome.result.status is Status.ok, outcome.result.reason
    run = client.get_run(outcome.run_id)
    assert run.data.params["scenario.no_model"] == "True"
    assert run.data.metrics["throughput_fps"] > 0 and run.data.metrics["frames"] == 6
    assert {f"stage_{stage}_s" for stage in ("decode", "write")} <= set(run.data.metrics)
    assert 0 < run.data.metrics["after_model_s"] <= run.data.metrics["duration_s"]
    kept_files = {path.name for path in kept.iterdir()}  # the last pass's outputs, the source copy included
    assert np.load(kept / "clip_depths.npz")["depths"].shape == (6, 48, 64)
    assert "clip_depths.npz" in kept_files and any(name.endswith("_src.mp4") for name in kept_files), kept_files


# the network input and weights of the session's graph cache (conftest.graph_cache): one export for every graph test
SHARED_GRAPH = ["scenario.height=28", "scenario.width=42"]
# The default and every backend that runs whole windows (compile: its own test, its first call takes minutes on a CPU).
FORWARD_BACKENDS = [r.name for r in BACKENDS.records() if r.name == BackendConfig.name or r.value.whole_windows]


@pytest.mark.xdist_group("graphs")
@pytest.mark.parametrize("backend", FORWARD_BACKENDS)
def test_every_backend_is_a_recorded_forward_job(bench, backend, random_checkpoint):
    if backend_status(backend, "cpu") is not None:
        pytest.skip(backend_status(backend, "cpu"))
    window = ["scenario.frames=32", *SHARED_GRAPH, "scenario.warmup=0", "scenario.min_runs=2"]
    outcome, client = bench(
        "scenario=forward", f"backend={backend}", f"model.checkpoint={random_checkpoint}", *window, "scenario.min_time_s=0"
    )
    assert outcome.result.status is Status.ok, outcome.result.reason
    run = client.get_run(outcome.run_id)
    assert run.data.params["backend.name"] == backend and "first_call_s" in run.data.metrics
    assert (backend in outcome.name) == (backend != BackendConfig.name)  # the default backend is not named


def test_a_backend_that_cannot_run_the_choice_is_recorded_unavailable(bench):
    outcome, client = bench("scenario=forward", "backend=onnxruntime", "precision=bf16", "scenario.height=28", "scenario.width=28")
    assert outcome.result.status is Status.unavailable
    assert "precision=bf16 is unavailable" in outcome.result.reason
    outcome, client = bench("scenario=forward", "backend=openvino", *FAST_TIMING)  # 2 frames: not a whole window
    assert outcome.result.status is Status.unavailable
    assert "runs whole windows of 32 frames; scenario.frames=2" in outcome.result.reason


@pytest.mark.xdist_group("graphs")
def test_a_whole_window_backend_defaults_to_a_whole_window(bench, random_checkpoint):
    outcome, client = bench("scenario=forward", "backend=openvino", f"model.checkpoint={random_checkpoint}", *SHARED_GRAPH,
                            "scenario.warmup=0", "scenario.min_runs=1", "scenario.min_time_s=0")
    assert outcome.result.status is Status.ok, outcome.result.reason
    assert client.get_run(outcome.run_id).data.params["scenario.frames"] == "32"
