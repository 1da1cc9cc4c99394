"""Device decisions of the second device review (issue 22), each checked on CPU.

The decisions are driven through the real device records with monkeypatched torch queries (``torch.cuda.*``,
``torch.backends.mps.*``, ``sys.platform``, capabilities) and meta tensors. Numbers refer to the issue's items.
"""

from __future__ import annotations

import importlib.machinery
import math
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from vda import backends, build_model
from vda.attention import AttentionOp, SdpaConfig, attention_problem, implementations, math_attention
from vda.backends import compile as compile_backend
from vda.backends import onnxruntime as ort_backend
from vda.backends import openvino as ov_backend
from vda.backends.export import GraphFiles
from vda.backends.onnxruntime import OnnxRuntimeRunner
from vda.backends.openvino import OpenVinoRunner
from vda.errors import BackendUnavailableError, ConfigError, DeviceUnavailableError
from vda.model import VideoDepthAnything
from vda.model.temporal import TemporalModule
from vda.infer import dataset
from vda.depth.preprocess import Preprocessor
from vda.runtime import device as device_mod
from vda.runtime import precision as precision_mod
from vda.runtime.device import DEVICES, MAX_SCORE_BYTES, resolve_device
from vda.runtime.memory import MemoryTracker
from vda.runtime.precision import Precision, autocast, resolve_precision
from vda.runtime.timing import StageTimes

ROOT = Path(__file__).resolve().parents[1]
CUDA, MPS, CPU = torch.device("cuda"), torch.device("mps"), torch.device("cpu")
MIB = 2**20


@pytest.fixture
def on_record(monkeypatch):
    """``on_record(module, kind)``: ``module`` looks up the real ``kind`` record for every device (CPU tensors)."""

    def use(module, kind: str) -> None:
        monkeypatch.setattr(module, "facts", lambda device: DEVICES.get(kind))

    return use


@pytest.fixture
def capability(monkeypatch):
    def set_to(value):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: value)

    return set_to


# 1. flash/cuDNN have no fp32 path: the temporal blocks' fp32 calls run efficient/math, the encoder's flash
def test_flash_kernel_follows_each_calls_dtype_under_autocast(monkeypatch, on_record):
    model = build_model("vits", attention_options={"kernel": "flash"}, device="cpu", precision="bf16", checkpoint=None)
    on_record(implementations, "cuda")
    calls, real = [], F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else q.dtype
        calls.append((dtype, torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.cudnn_sdp_enabled()))
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.inference_mode():
        model(torch.randn(1, 2, 3, 28, 28))
    fp32 = [c for c in calls if c[0] == torch.float32]
    half = [c for c in calls if c[0] == torch.bfloat16]
    assert fp32 and half  # temporal blocks in fp32, encoder in bf16
    assert all(not flash and not cudnn for _, flash, cudnn in fp32)
    assert all(flash for _, flash, _ in half)


# 2. backend=compile refused where Inductor cannot build this model
def test_compile_refused_on_mps_before_torch_2_8(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.7.1")
    assert "backend=compile on mps needs torch>=2.8" in backends.backend_status("compile", MPS)
    monkeypatch.setattr(torch, "__version__", "2.8.0")
    assert backends.backend_status("compile", MPS) is None


def test_compile_refused_on_macos_cpu_without_openmp(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(compile_backend.shutil, "which", lambda name: None if name == "brew" else f"/usr/bin/{name}")
    banner = subprocess.CompletedProcess(["c++", "--version"], 0, stdout="Apple clang version 15.0.0 (clang-1500.3.9.4)\n")
    monkeypatch.setattr(compile_backend.subprocess, "run", lambda *args, **kwargs: banner)
    monkeypatch.delenv("OMP_PREFIX", raising=False)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    assert "needs OpenMP, which Apple clang lacks" in backends.backend_status("compile", CPU)
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "omp.h").write_text("")
    monkeypatch.setenv("OMP_PREFIX", str(tmp_path))  # brew install libomp; OMP_PREFIX=$(brew --prefix libomp)
    assert backends.backend_status("compile", CPU) is None


# 3, 11. ONNX Runtime providers: CUDA on the model's GPU, CoreML for device=mps only, on CPU+GPU units
def test_onnxruntime_cuda_provider_runs_on_the_models_gpu():
    assert ort_backend.provider_options(["CUDAExecutionProvider", "CPUExecutionProvider"], torch.device("cuda:1")) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]


def test_coreml_only_for_mps_with_fp32_compute_units(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    )
    assert ort_backend.default_providers(CPU) == ["CPUExecutionProvider"]
    assert ort_backend.default_providers(MPS) == ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert ort_backend.provider_options(ort_backend.default_providers(MPS), MPS)[0] == (
        "CoreMLExecutionProvider",
        {"MLComputeUnits": "CPUAndGPU"},  # never the Neural Engine (fp16) for the fp32 graphs
    )


# 9. a provider that did not start is refused, not replaced by the CPU silently
def test_onnxruntime_refuses_a_provider_that_fell_back_to_cpu(monkeypatch, tmp_path):
    requested = []

    class Session:  # ONNX Runtime's behaviour when the CUDA libraries cannot be loaded
        def __init__(self, path, sess_options=None, providers=None):
            requested.append(providers)

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    graphs = types.SimpleNamespace(encoder=tmp_path / "encoder.onnx", head=tmp_path / "head.onnx")
    monkeypatch.setattr(ort_backend, "cached_graphs", lambda *args, **kwargs: graphs)
    runner = OnnxRuntimeRunner(VideoDepthAnything("vits"), ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(BackendUnavailableError, match="could not start CUDAExecutionProvider"):
        runner.build((2, 3))
    assert requested and requested[0][-1] == "CPUExecutionProvider"
    cpu_only = OnnxRuntimeRunner(VideoDepthAnything("vits"), ["CPUExecutionProvider"])
    assert len(cpu_only.build((2, 3))) == 2


# 10. OpenVINO's inference precision is read back after compiling
def test_openvino_refuses_a_precision_hint_the_hardware_ignores(monkeypatch, tmp_path):
    import openvino as ov
    from openvino import opset13 as ops

    frames = ops.parameter([1, 4], ov.Type.f32)
    path = tmp_path / "tiny.xml"
    ov.save_model(ov.Model([ops.relu(frames)], [frames]), str(path))
    graphs = GraphFiles(tmp_path, path, path)
    monkeypatch.setattr(ov_backend, "cached_graphs", lambda *args, **kwargs: graphs)
    assert len(OpenVinoRunner(VideoDepthAnything("vits"), "CPU").build((2, 3))) == 2  # f32 is always honoured
    used = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f16"})
    used = used.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    runner = OpenVinoRunner(VideoDepthAnything("vits", precision="fp16"), "CPU")
    if used == "f16":  # a CPU with native fp16 runs what was asked
        assert len(runner.build((2, 3))) == 2
    else:  # x86 without AVX512-FP16: bf16 or f32 in place of f16
        with pytest.raises(BackendUnavailableError, match=f"runs {used}, not f16, for precision=fp16"):
            runner.build((2, 3))


# 4. Intel Macs: Apple silicon only, and the install says the same as the docs
def test_intel_macs_decision_matches_pyproject_and_docs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch_req = [r for r in project["dependencies"] if r.startswith("torch")]
    assert torch_req == ["torch>=2.6"]  # no marker admits macOS x86_64, where no torch>=2.6 wheel exists
    docs = (ROOT / "docs" / "devices.md").read_text()
    assert "Apple silicon only" in docs and "Intel Mac" in docs and "torch>=2.6" in docs


# 5. MPS: one item's scores past 2**32 bytes are split by heads, then query blocks
def test_mps_splits_heads_and_query_blocks(monkeypatch, on_record):
    on_record(implementations, "mps")
    sizes, real = [], F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        sizes.append(q.shape[1] * q.shape[2] * k.shape[2] * 4)
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    # vitl at input 1036 on a 16:9 video: 74 x 132 patches + 1 = 9769 tokens, 16 heads: 5.7 GiB for one item
    q = torch.empty(1, 16, 9769, 64, device="meta")
    out = AttentionOp("sdpa")(q, q, q, 0.125)
    assert out.shape == q.shape
    assert len(sizes) == 8 and max(sizes) <= MAX_SCORE_BYTES  # two heads (0.7 GiB) per call


def test_head_and_query_split_gives_the_same_numbers(monkeypatch):
    q, k, v = (torch.randn(2, 4, 9, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    expected = math_attention(q, k, v, 0.3)
    for budget in (2 * 9 * 9 * 4, 5 * 9 * 4):  # two heads per call; then 5 query rows per call
        monkeypatch.setattr(implementations, "MAX_SCORE_BYTES", budget)
        torch.testing.assert_close(AttentionOp("math")(q, k, v, 0.3), expected)


# 6. xformers is probed with a tiny call, not by presence only
def _fake_xformers(monkeypatch, attention):
    package, ops = types.ModuleType("xformers"), types.ModuleType("xformers.ops")
    package.__spec__ = importlib.machinery.ModuleSpec("xformers", None)
    ops.memory_efficient_attention = attention
    package.ops = ops
    monkeypatch.setitem(sys.modules, "xformers", package)
    monkeypatch.setitem(sys.modules, "xformers.ops", ops)


def test_xformers_built_for_another_torch_is_refused_in_one_line(monkeypatch, capability):
    def broken(q, k, v, scale=None):
        raise NotImplementedError("No operator found for `memory_efficient_attention_forward` with inputs:\n  query")

    _fake_xformers(monkeypatch, broken)
    capability((8, 0))
    problem = attention_problem("xformers", CUDA, "fp16")
    assert problem is not None and "fails a test call" in problem and "\n" not in problem
    probe = implementations.xformers_probe(CPU, torch.float32)
    assert "NotImplementedError: No operator found for `memory_efficient_attention_forward`" in probe


def test_xformers_probe_passes_a_working_build(monkeypatch):
    _fake_xformers(monkeypatch, lambda q, k, v, scale=None: math_attention(*(t.transpose(1, 2) for t in (q, k, v)), scale).transpose(1, 2))
    assert implementations.xformers_probe(CPU, torch.float32) is None


# 7. a device index that does not exist is refused up front
def test_device_index_checked_against_the_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(device_mod, "mps_available", lambda: True)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceUnavailableError, match=r"device=cuda:7 does not exist: this machine has 1 cuda device "):
        resolve_device("cuda:7")
    assert resolve_device("mps") == MPS
    with pytest.raises(DeviceUnavailableError, match="device=mps:1 does not exist"):
        resolve_device("mps:1")
    with pytest.raises(ConfigError, match="device=cuda:x is not a device name"):
        resolve_device("cuda:x")


# 8. MPS bf16 needs macOS 14
@pytest.mark.parametrize("macos, accepted", [((13, 6), False), ((14, 0), True)])
def test_mps_bf16_needs_macos_14(monkeypatch, macos, accepted):
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: True)
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: macos >= (major, minor))
    assert resolve_precision("fp16", MPS) is Precision.fp16
    if accepted:
        assert resolve_precision("bf16", MPS) is Precision.bf16
    else:
        with pytest.raises(DeviceUnavailableError, match="bf16 on MPS needs macOS 14"):
            resolve_precision("bf16", MPS)


# 12, 14. peak memory: device-wide for a runtime outside torch, and the outer region keeps inner peaks
@pytest.fixture
def cuda_counters(monkeypatch):
    """CUDA's allocator counters, simulated: ``alloc(mib)`` / ``free(mib)`` move them."""
    state = {"now": 0, "peak": 0, "used": 4000 * MIB}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: state.update(peak=state["now"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: state["peak"])
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: state["peak"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (16000 * MIB - state["used"], 16000 * MIB))

    def alloc(mib):
        state["now"] += mib * MIB
        state["peak"] = max(state["peak"], state["now"])

    return types.SimpleNamespace(alloc=alloc, free=lambda mib: alloc(-mib), state=state)


def test_nested_trackers_keep_the_outer_peak(cuda_counters):
    with MemoryTracker(CUDA, interval_s=60) as outer:
        with MemoryTracker(CUDA, interval_s=60) as first:
            cuda_counters.alloc(100)
            cuda_counters.free(100)
        with MemoryTracker(CUDA, interval_s=60) as second:
            cuda_counters.alloc(50)
            cuda_counters.free(50)
    assert (first.peak_mb, second.peak_mb) == (100, 50)
    assert outer.peak_mb == 100


def test_graph_backend_memory_is_device_wide_or_unavailable(cuda_counters, monkeypatch):
    with MemoryTracker(CUDA, interval_s=60, other_runtimes=True) as memory:
        cuda_counters.alloc(10)
    assert memory.peak_mb == 4000  # mem_get_info: what ONNX Runtime holds too, not torch's 10 MiB
    assert memory.details["cuda_peak_allocated_mib"] == 10
    monkeypatch.setattr(torch.mps, "synchronize", lambda: None)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 5 * MIB)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 6 * MIB)
    with MemoryTracker(MPS, interval_s=60, other_runtimes=True) as memory:
        pass
    assert math.isnan(memory.peak_mb)  # no device-wide counter on MPS: unavailable, never a small number
    assert [n for n in backends.BACKENDS if backends.get_backend(n).foreign_memory] == ["onnxruntime", "openvino"]


# 13. fp32 means fp32: TF32 off in every CUDA region the model runs
class ConvFlags(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.conv2d, F.conv_transpose2d, F.linear, torch.matmul, torch.Tensor.__matmul__):
            self.seen.add((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tf32_is_off_in_cuda_model_regions(monkeypatch, on_record, precision):
    model = build_model("vits", device="cpu", precision=precision, checkpoint=None)
    on_record(precision_mod, "cuda")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # cuDNN's default
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    with torch.inference_mode(), ConvFlags() as flags:
        model(torch.randn(1, 2, 3, 28, 28))
    assert flags.seen == {(False, False)}
    assert torch.backends.cudnn.allow_tf32 is True  # restored after the region


# 15. the attention benchmark times the temporal attention in the dtype the model runs it
def test_benchmark_temporal_attention_dtype_is_the_models(monkeypatch):
    from benchmarks.micro.bench_attention import temporal_qkv

    seen = []
    implementations.register_attention("dtype_spy", lambda q, k, v, scale: seen.append(q.dtype) or math_attention(q, k, v, scale))
    try:
        module = TemporalModule(64, AttentionOp("dtype_spy"))
        with autocast(CPU, Precision.bf16):
            module(torch.randn(1, 64, 2, 3, 3))
    finally:
        implementations.ATTENTION.unregister("dtype_spy")
    assert {q.dtype for q in temporal_qkv("vits", "path_3", 3, CPU)} == set(seen) == {torch.float32}


# 16 is tests/test_devices.py::test_bf16_refused_before_ampere_on_the_chosen_gpu


# 17. stage timing on CUDA reads events later: no host synchronisation per stage
def test_cuda_stages_are_timed_without_a_sync_per_stage(monkeypatch):
    clock, syncs = [0.0], []

    class Event:  # torch.cuda.Event on a device whose work completes at ``clock``
        def __init__(self, enable_timing=False):
            self.at = None

        def record(self, stream=None):
            self.at = clock[0]

        def query(self):
            return True

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return end.at - self.at

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: syncs.append(device))
    times = StageTimes(device=torch.device("cuda:0"))
    for _ in range(3):
        with times.stage("encoder"):
            clock[0] += 500.0  # ms of queued device work
    assert syncs == []
    assert times.seconds == {"encoder": pytest.approx(1.5)} and times.calls == {"encoder": 3}
    profiled = StageTimes(device=torch.device("cuda:0"), sync=True)
    with profiled.stage("encoder"):
        pass
    assert len(syncs) == 1


# 18. ONNX Runtime runs with IO binding: inputs and outputs bound in place, no host round trip through numpy
def test_onnxruntime_runs_through_io_binding(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["frames"], ["depth"])],
        "relu",
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [2, 3])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    runner = OnnxRuntimeRunner(VideoDepthAnything("vits"), ["CPUExecutionProvider"])
    session = runner.session(path)

    def host_path(*args, **kwargs):
        raise AssertionError("session.run copies through numpy")

    session.run = host_path
    x = torch.randn(2, 3)
    (out,) = runner._run((session, (1, 1)), {"frames": x}, {"depth": (2, 3)})
    torch.testing.assert_close(out, x.relu())


# 19. SDPA's math kernel builds the scores on CUDA too: split like math
@pytest.mark.parametrize("kernel, dtype, cap", [("math", torch.float16, (9, 0)), ("auto", torch.bfloat16, (7, 5))])
def test_cuda_sdpa_math_kernel_is_split(monkeypatch, on_record, capability, kernel, dtype, cap):
    on_record(implementations, "cuda")
    capability(cap)  # auto with bf16 before Ampere: SDPA falls back to its math kernel
    sizes, real = [], F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        sizes.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * 4)
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    q = torch.empty(32, 16, 1370, 64, device="meta", dtype=dtype)  # a vitl window's encoder attention at 518
    assert AttentionOp(SdpaConfig(kernel=kernel))(q, q, q, 0.125).shape == q.shape
    assert len(sizes) > 1 and max(sizes) <= MAX_SCORE_BYTES


# 20. several workers on MPS: refused
def test_mps_runs_one_worker(monkeypatch):
    with pytest.raises(ConfigError, match="infer.workers=2 on mps: each worker loads its own model onto the same GPU"):
        dataset.check_workers(2, MPS)
    dataset.check_workers(1, MPS)
    dataset.check_workers(4, CPU)
    dataset.check_workers(4, CUDA)


def test_dataset_with_workers_on_mps_is_refused_before_any_work(monkeypatch, tmp_path, make_video):
    from hydra import compose, initialize_config_dir

    from vda.config import to_object
    from vda.infer.config import register_configs
    from vda.infer.dataset import run_dataset

    monkeypatch.setattr(device_mod, "mps_available", lambda: True)
    folder = tmp_path / "videos"
    folder.mkdir()
    make_video("videos/a.mp4", count=2)
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("infer", overrides=[f"input={folder}", "device=mps", "infer.workers=2", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises(ConfigError, match="infer.workers=2 on mps"):
        run_dataset(to_object(cfg))
    assert not (tmp_path / "out").exists()


# Small: preprocessing gives contiguous NCHW
def test_preprocessing_output_is_contiguous():
    frames = [np.zeros((48, 64, 3), np.uint8) for _ in range(2)]
    x = Preprocessor((48, 64), 28, CPU)(frames)
    assert x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)


# Small: no xformers extra that would replace the user's torch, and no message that points to one
def test_no_xformers_extra_replaces_torch():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not any("xformers" in req for reqs in extras.values() for req in reqs)
    source = (ROOT / "vda" / "attention" / "implementations.py").read_text()
    assert ".[xformers]" not in source


# Small: the resolved device keeps its index
def test_resolved_device_keeps_the_index(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_dir

    from vda.bench.config import register_configs
    from vda.bench.scenarios import run_scenario
    from vda.config import to_object

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("bench", overrides=["device=cpu", "device.name=cpu:0", "scenario=pipeline", "scenario.no_model=true",
                                          "scenario.clip_frames=2", "scenario.clip_height=28", "scenario.clip_width=28",
                                          "scenario.npz=false", "scenario.vis=false", "mlflow.enabled=false"])
    result = run_scenario(to_object(cfg))
    assert result.params["device.resolved"] == "cpu:0"
    assert result.params["precision.fp32_math"] == "ieee"


# the report keeps runs of different SDPA kernels apart (the CUDA check sweeps them)
def test_report_labels_a_forced_sdpa_kernel():
    from vda.bench.report import row_from_run

    def run(kernel):
        params = {"attention.name": "sdpa", "attention.kernel": kernel, "device.resolved": "cuda:0"}
        return types.SimpleNamespace(
            data=types.SimpleNamespace(params=params, tags={}, metrics={}),
            info=types.SimpleNamespace(run_id=kernel, start_time=0),
        )

    rows = [row_from_run(run(kernel)) for kernel in ("auto", "flash", "cudnn")]
    assert [r.attention for r in rows] == ["sdpa", "sdpa:flash", "sdpa:cudnn"]
    assert len({r.key for r in rows}) == 3
