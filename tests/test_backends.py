"""Runtime backends: export, the graph cache, equivalence with eager torch, availability messages.

Every graph of tiny_model here is the session's one export at GRAPH_INPUT_HW (conftest.graph_cache); the module
runs on one pytest-xdist worker, which builds it once."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tomllib
from pathlib import Path

import onnx
import pytest
import torch

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore

import vda.backends
import vda.backends.export
import vda.backends.openvino
import vda.infer.export
from conftest import GRAPH_INPUT_HW, synthetic_frames
from vda import backends
from vda.backends.cache import MANIFEST, cached_build
from vda.backends.graphs import EncoderGraph
from vda.config import to_object
from vda.errors import BackendUnavailableError, CheckpointError, ConfigError, InputShapeError
from vda.model import VideoDepthAnything
from vda.depth import WindowedDepth
from vda.factory import assemble, build_model
from vda.infer.config import register_configs as register_infer

ROOT = Path(__file__).resolve().parents[1]

INPUT_HW = GRAPH_INPUT_HW  # a 2x3 patch grid: the exports of the session's graph cache (conftest)
GRAPH_BACKENDS = tuple(r.name for r in backends.BACKENDS.records() if r.value.whole_windows)  # the exported graphs
TOLERANCE = 1e-5  # relative L2 against eager torch, float32
pytestmark = pytest.mark.xdist_group("graphs")


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def window() -> torch.Tensor:
    return torch.randn(1, 32, 3, *INPUT_HW, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def reference(tiny_model, window) -> torch.Tensor:
    with torch.inference_mode():
        return tiny_model(window)


# what each built-in backend needs on a CPU machine, found independently of vda's own checks
NEEDS_MODULES = {"torch": (), "compile": (), "onnxruntime": ("onnxruntime", "onnx", "onnxscript"),
                 "openvino": ("openvino", "onnx", "onnxscript")}
HAS_COMPILER = any(shutil.which(c) for c in ("c++", "g++", "clang++"))


@pytest.mark.parametrize("name", sorted(NEEDS_MODULES))
def test_registry_says_which_backends_run_on_this_machine(name):
    """Each built-in backend is listed; it runs on the CPU exactly when what it needs is installed here."""
    runs = all(importlib.util.find_spec(m) is not None for m in NEEDS_MODULES[name]) and (name != "compile" or HAS_COMPILER)
    reason = backends.backend_status(name, "cpu")
    assert (reason is None) == runs, reason
    if reason is not None:
        assert f"backend={name}" in reason


def test_positional_table_constant_gives_the_same_features(tiny_model):
    frames = torch.randn(3, 3, *INPUT_HW, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        expected = tiny_model.encode(frames)
        got = EncoderGraph(tiny_model, (2, 3))(frames)
    for a, b in zip(got, expected, strict=True):
        assert rel_l2(a, b) <= 1e-6


def test_export_writes_encoder_and_head_graphs(tiny_model):
    files = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "onnx")
    encoder, head = onnx.load(str(files.encoder)), onnx.load(str(files.head))
    onnx.checker.check_model(encoder)
    onnx.checker.check_model(head)
    frames_dims = encoder.graph.input[0].type.tensor_type.shape.dim
    assert not frames_dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in frames_dims[1:]] == [3, *INPUT_HW]
    assert [i.name for i in head.graph.input] == ["feature1", "feature2", "feature3", "feature4"]
    assert head.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 32
    assert [d.dim_value for d in head.graph.output[0].type.tensor_type.shape.dim] == [32, *INPUT_HW]


@pytest.mark.parametrize("name", GRAPH_BACKENDS)
def test_graph_backend_matches_torch_on_a_window(tiny_model, window, reference, name):
    runner = backends.create(name, tiny_model)
    with torch.inference_mode():
        depth = runner(window)
    assert depth.shape == reference.shape and depth.dtype == torch.float32
    assert rel_l2(depth, reference) <= TOLERANCE
    assert runner.attention_name == "math" and runner.encoder_name == "vits" and not runner.metric



def test_openvino_loads_its_compiled_models_from_the_graph_entry(tiny_model, window):
    """The first build compiles the IR and leaves OpenVINO's blobs in the entry's folder (the entry stays valid);
    the next runner loads both graphs from them."""
    patch_hw = (INPUT_HW[0] // 14, INPUT_HW[1] // 14)
    first = backends.create("openvino", tiny_model)
    with torch.inference_mode():
        first(window)
    files = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "openvino")
    assert len(list((files.folder / vda.backends.openvino.COMPILED).iterdir())) >= 2
    second = backends.create("openvino", tiny_model)
    requests = second.build(patch_hw)
    assert [r.get_compiled_model().get_property("LOADED_FROM_CACHE") for r in requests] == [True, True]


@pytest.mark.parametrize("name", GRAPH_BACKENDS)
def test_windowed_depth_through_a_backend_matches_torch(tiny_model, name):
    frames = list(synthetic_frames(40, 48, 64, seed=5))  # two windows
    expected = torch.cat(list(WindowedDepth(tiny_model, input_size=28).run(iter(frames))))
    runner = backends.create(name, tiny_model)
    got = torch.cat(list(WindowedDepth(runner, input_size=28).run(iter(frames))))
    assert got.shape == expected.shape == (40, 48, 64)
    assert rel_l2(got, expected) <= TOLERANCE


@pytest.mark.parametrize("name", GRAPH_BACKENDS)
def test_encoder_graph_runs_in_chunks_with_the_features_of_one_call(tiny_model, window, name, monkeypatch):
    """A window reaches the encoder graph in chunks of ENCODER_CHUNK frames (its runtime's buffers stay sized
    for a chunk); the features are those of the whole batch in eager torch."""
    runner = backends.create(name, tiny_model)
    frames = window[0, :21]
    seen, run_encoder = [], runner.run_encoder
    monkeypatch.setattr(runner, "run_encoder", lambda graph, x: seen.append(x.shape[0]) or run_encoder(graph, x))
    with torch.inference_mode():
        got, expected = runner.encode(frames), tiny_model.encode(frames)
    chunk = vda.backends.runners.ENCODER_CHUNK
    assert seen == [chunk] * (21 // chunk) + [21 % chunk]
    assert all(rel_l2(g, e) <= TOLERANCE for g, e in zip(got, expected, strict=True))


@pytest.mark.parametrize("name", [n for n in GRAPH_BACKENDS if backends.get_backend(n).foreign_memory])
def test_graph_runtime_lets_the_torch_network_go_and_loads_it_again_to_export(
    tiny_model, random_checkpoint, window, reference, name, tmp_path, monkeypatch
):
    """Built from a checkpoint, a runner whose runtime holds the weights drops the eager network once its graphs
    exist; a size that must be exported loads it again (same weights); weights changed on disk are refused."""
    runner = build_model("vits", device="cpu", checkpoint=random_checkpoint, backend=name)
    loads, load = [], runner._load
    runner.reload_with(lambda: loads.append(1) or load())
    with torch.inference_mode():
        assert rel_l2(runner(window), reference) <= TOLERANCE
    assert runner.model is None and not loads  # the graphs came from the cache: no network needed
    exported = []
    monkeypatch.setattr(vda.backends.export, "export_onnx", lambda model, hw, folder: exported.append(
        vda.backends.export.weights_digest(model)) or (folder / "encoder.onnx").write_bytes(b"x"))
    vda.backends.export.cached_graphs(runner.source(), (14, 14), "onnx", root=tmp_path)
    assert loads == [1] and exported == [vda.backends.export.weights_digest(tiny_model)]
    runner.model = None
    runner.reload_with(lambda: VideoDepthAnything("vits"))  # other weights than the graphs were built from
    with pytest.raises(CheckpointError, match="checkpoint changed"):
        runner.network()


def test_second_build_reuses_the_cache(tiny_model, monkeypatch):
    first = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "openvino")
    stamps = {p: p.stat().st_mtime_ns for p in first.folder.iterdir()}

    def no_export(*args, **kwargs):
        raise AssertionError("the cached graphs were exported again")

    monkeypatch.setattr(vda.backends.export, "export_onnx", no_export)
    monkeypatch.setattr(vda.backends.openvino, "convert_openvino", no_export)
    second = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "openvino")
    assert second == first
    assert {p: p.stat().st_mtime_ns for p in second.folder.iterdir()} == stamps


def _counting_build(counter: list[int]):
    def build(folder):
        counter.append(1)
        (folder / "graph.bin").write_bytes(bytes(range(256)) * 64)
        (folder / "graph.xml").write_text("<net/>")

    return build


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: f.joinpath("graph.bin").write_bytes(f.joinpath("graph.bin").read_bytes()[:100]),  # truncated
        lambda f: f.joinpath("graph.bin").write_bytes(b"\xff" + f.joinpath("graph.bin").read_bytes()[1:]),  # altered
        lambda f: f.joinpath("graph.xml").unlink(),  # missing file
        lambda f: f.joinpath(MANIFEST).unlink(),  # interrupted before the manifest
        lambda f: f.joinpath(MANIFEST).write_text("{not json"),  # corrupt manifest
    ],
    ids=["truncated", "altered", "missing-file", "no-manifest", "bad-manifest"],
)
def test_corrupt_cache_entry_is_rebuilt(tmp_path, damage):
    calls: list[int] = []
    key = {"encoder": "vits", "input_hw": [28, 42]}
    folder = cached_build("g", key, _counting_build(calls), tmp_path)
    assert cached_build("g", key, _counting_build(calls), tmp_path) == folder and len(calls) == 1
    damage(folder)
    assert cached_build("g", key, _counting_build(calls), tmp_path) == folder and len(calls) == 2
    assert (folder / "graph.bin").read_bytes() == bytes(range(256)) * 64
    other = cached_build("g", key | {"input_hw": [42, 28]}, _counting_build(calls), tmp_path)
    assert other != folder and len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, other.name])  # no staging left


def test_truncated_graph_file_in_the_cache_is_re_exported(tiny_model, tmp_path, monkeypatch):
    built = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "onnx")  # the session's entry
    shutil.copytree(built.folder, tmp_path / built.folder.name)
    monkeypatch.setenv("VDA_CACHE_DIR", str(tmp_path))
    exports: list[int] = []

    def counted(model, input_hw, folder):  # the session's export again (an export takes tens of seconds)
        exports.append(1)
        assert model is tiny_model and tuple(input_hw) == INPUT_HW
        for path in built.folder.iterdir():
            if path.name != MANIFEST:
                shutil.copy(path, folder / path.name)

    monkeypatch.setattr(vda.backends.export, "export_onnx", counted)
    files = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "onnx")
    assert files.folder.parent == tmp_path and not exports  # the copied entry is valid as it is
    size = files.head.stat().st_size
    with open(files.head, "r+b") as f:
        f.truncate(size // 2)
    again = vda.backends.export.cached_graphs(tiny_model, INPUT_HW, "onnx")
    assert len(exports) == 1 and again.head.stat().st_size == size
    onnx.checker.check_model(onnx.load(str(again.head)))


def _without_packages(monkeypatch) -> None:
    """Every import spec looked up by name is missing (torch and vda, already imported, are unaffected)."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: None)


@pytest.mark.parametrize("name", backends.BACKENDS.names())
def test_missing_package_gives_one_line_naming_an_extra_of_pyproject(tiny_model, monkeypatch, name):
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    _without_packages(monkeypatch)
    reason = backends.backend_status(name, "cpu")
    if reason is None:
        return  # needs no optional package (torch, compile)
    extra = re.search(r'pip install -e "\.\[(\w+)\]"', reason).group(1)
    assert "\n" not in reason and name in reason and extra in extras
    with pytest.raises(BackendUnavailableError, match=rf"\[{extra}\]"):
        backends.create(name, tiny_model)


ECHO_BACKEND = """
from dataclasses import dataclass

from vda.backends.base import BackendConfig, register_backend


@dataclass
class EchoConfig(BackendConfig):
    name: str = "echo"
    scale: float = 1.0


class Echo:
    def __init__(self, model, scale):
        self.model, self.scale = model, scale

    def __call__(self, x):
        return self.model(x) * self.scale


register_backend("echo", lambda model, options: Echo(model, options.scale), schema=EchoConfig, help="test")
"""


def test_a_new_backend_is_one_module_of_the_package(tmp_path, monkeypatch, random_checkpoint, window, reference):
    """A module dropped into vda.backends is a choice: its record, its Hydra group option with its typed
    options, and the assembler runs it; nothing else is edited."""
    (tmp_path / "echo.py").write_text(ECHO_BACKEND)
    monkeypatch.setattr(vda.backends, "__path__", [*vda.backends.__path__, str(tmp_path)])
    try:
        assert "echo" in backends.discover() and "echo" in backends.BACKENDS
        register_infer()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = to_object(compose("infer", overrides=[
                "input=x.mp4", "backend=echo", "backend.scale=2", "device=cpu", "precision=fp32",
                f"model.checkpoint={random_checkpoint}",
            ]))
        assert type(cfg.backend).__name__ == "EchoConfig" and cfg.backend.scale == 2
        runner = assemble(cfg)
        with torch.inference_mode():
            assert torch.equal(runner(window), 2 * reference)
    finally:
        backends.BACKENDS.unregister("echo")
        sys.modules.pop("vda.backends.echo", None)
        ConfigStore.instance().repo["backend"].pop("echo.yaml", None)


@pytest.mark.parametrize("name", GRAPH_BACKENDS)
def test_graph_backends_refuse_xformers_attention(name):
    model = VideoDepthAnything("vits", attention="xformers")
    with pytest.raises(BackendUnavailableError, match=re.escape("attention=xformers applies to backend=torch|compile only")):
        backends.create(name, model)


def test_onnxruntime_refuses_half_precision_and_openvino_maps_it_to_a_hint():
    model = VideoDepthAnything("vits", precision="bf16")
    with pytest.raises(BackendUnavailableError, match="precision=bf16 is unavailable"):
        backends.create("onnxruntime", model)
    assert backends.create("openvino", model).hint == "bf16"
    assert backends.create("openvino", VideoDepthAnything("vits", precision="fp16")).hint == "f16"
    assert backends.create("openvino", VideoDepthAnything("vits")).hint == "f32"


def test_openvino_bf16_hint_runs_close_to_fp32(tiny_model, window, reference, random_checkpoint):
    from vda import build_model

    model = build_model("vits", precision="bf16", checkpoint=random_checkpoint)
    with torch.inference_mode():
        depth = backends.create("openvino", model)(window)
    assert rel_l2(depth, reference) <= 5e-2


def test_bad_choices_are_refused(tiny_model, window):
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        backends.create("tensorrt", tiny_model)
    with pytest.raises(ConfigError, match="has no option providers"):
        backends.create("openvino", tiny_model, providers=["CPUExecutionProvider"])
    with pytest.raises(ConfigError, match="unknown compile mode"):
        backends.create("compile", tiny_model, mode="fast")
    with pytest.raises(BackendUnavailableError, match="TensorrtExecutionProvider"):
        backends.create("onnxruntime", tiny_model, providers=["TensorrtExecutionProvider"])
    with pytest.raises(InputShapeError, match="whole windows of 32 frames"):
        backends.create("onnxruntime", tiny_model)(window[:, :8])


def test_register_backend_adds_a_runtime(tiny_model, monkeypatch):
    def factory(model, options):
        return backends.Runner(model)

    backends.register_backend("eager-copy", factory, lambda device: "not today")
    try:
        with pytest.raises(ConfigError, match="already registered"):
            backends.register_backend("eager-copy", factory)
        with pytest.raises(BackendUnavailableError, match="not today"):
            backends.create("eager-copy", tiny_model)
    finally:
        backends.BACKENDS.unregister("eager-copy")


def test_export_cli_refuses_a_bad_size_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        vda.infer.export.main(["--input-size", "30x42", "--checkpoint", "random", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "multiple of 14" in err


@pytest.mark.slow
@pytest.mark.xdist_group("compile")  # no exported graph: off the graphs worker, whose export is the suite's longest path
def test_compile_backend_matches_torch(tiny_model, window, reference):
    runner = backends.create("compile", tiny_model)
    with torch.inference_mode():
        depth = runner(window)
    assert rel_l2(depth, reference) <= TOLERANCE and runner.build_s > 0
