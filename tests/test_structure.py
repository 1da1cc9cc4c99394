"""The public API, the registries as the one source of every choice, and the shape of the codebase."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir

import vda
from vda.attention import ATTENTION
from vda.backends import BACKENDS
from vda.depth.modes import MODES
from vda.outputs.formats import OUTPUTS
from vda.bench.config import register_configs as register_bench
from vda.bench.scenarios import SCENARIOS
from vda.bench.scenarios.equivalence import EquivalenceScenarioConfig
from vda.config import to_object
from vda.model import ENCODERS
from vda.outputs import formats
from vda.depth.settings import InferSettings
from vda.infer.config import register_configs as register_infer
from vda.depth.process import process_video
from vda.runtime.device import device_choices
from vda.runtime.precision import Precision
from vda.video import VideoReader, probe
from vda.video.synthetic import synthetic_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


# ---------------------------------------------------------------- public API
def test_infer_video_on_an_array_equals_run_infer(tmp_path, run_cli, random_checkpoint, tiny_model):
    video = write_video(tmp_path / "api.mp4", synthetic_frames(37, 48, 64, seed=5), fps=24)
    proc = run_cli(
        "run_infer.py",
        f"input={video}",
        f"output_dir={tmp_path / 'out'}",
        "device=cpu",
        "precision=fp32",
        f"model.checkpoint={random_checkpoint}",
        "infer.input_size=28",
        "output.vis=false",
        "mlflow.enabled=false",
    )
    assert proc.returncode == 0, proc.stderr
    saved = np.load(tmp_path / "out" / "api_depths.npz")["depths"]
    frames = np.stack(list(VideoReader(probe(video))))  # the frames run_infer.py decoded
    depth = vda.infer_video(tiny_model, frames, input_size=28)
    assert depth.dtype == np.float32 and depth.shape == (37, 48, 64)
    np.testing.assert_array_equal(depth, saved)
    np.testing.assert_array_equal(vda.infer_video(tiny_model, video, input_size=28), saved)
    chunks = list(vda.iter_depth(tiny_model, iter(frames), input_size=28))
    assert len(chunks) > 1
    np.testing.assert_array_equal(np.concatenate(chunks), saved)


def test_infer_video_rejects_frames_it_cannot_use(tiny_model):
    from vda.errors import InputShapeError

    with pytest.raises(InputShapeError, match="frame 0: expected RGB uint8"):
        vda.infer_video(tiny_model, np.zeros((3, 28, 28, 3), np.float32), input_size=28)
    mixed = [np.zeros((28, 28, 3), np.uint8), np.zeros((28, 42, 3), np.uint8)]
    with pytest.raises(InputShapeError, match="frame 1"):
        vda.infer_video(tiny_model, mixed, input_size=28)


# ---------------------------------------------------------------- registries -> config choices
def _compose(config: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config, overrides=overrides)


CHOICES = (
    [("encoder", name) for name in ENCODERS]
    + [("device", name) for name in device_choices()]
    + [("precision", p.value) for p in Precision]
    + [("attention", name) for name in ATTENTION]
    + [("backend", name) for name in BACKENDS]
)


@pytest.mark.parametrize("group, name", CHOICES)
def test_every_registry_record_is_a_choice_of_both_commands(group, name):
    register_infer()
    register_bench()
    infer = to_object(_compose("infer", ["input=x.mp4", f"{group}={name}"]))
    bench = to_object(_compose("bench", [f"{group}={name}"]))
    for cfg in (infer, bench):
        assert str(getattr(getattr(cfg, group).name, "value", getattr(cfg, group).name)) == name


@pytest.mark.parametrize("name", MODES.names())
def test_every_mode_record_is_a_typed_choice_of_run_infer(name):
    register_infer()
    cfg = to_object(_compose("infer", ["input=x.mp4", f"mode={name}"]))
    assert isinstance(cfg.mode, MODES.get(name).schema) and cfg.mode.name == name


@pytest.mark.parametrize("name", OUTPUTS.names())
def test_every_output_record_is_a_switch_of_run_infer(name):
    register_infer()
    for value in (True, False):
        cfg = to_object(_compose("infer", ["input=x.mp4", f"output.{name}={str(value).lower()}"]))
        assert getattr(cfg.output, name) is value and (name in formats.enabled_formats(cfg.output)) is value


@pytest.mark.parametrize("name", SCENARIOS.names())
def test_every_scenario_record_is_a_typed_choice(name):
    register_bench()
    cfg = to_object(_compose("bench", [f"scenario={name}"]))
    assert isinstance(cfg.scenario, SCENARIOS.get(name).schema) and cfg.scenario.name == name


def test_equivalence_lists_every_registered_attention_by_default():
    vda.register_attention("extra", lambda q, k, v, scale: v)
    try:
        assert EquivalenceScenarioConfig().implementations == ATTENTION.names()
        assert "extra" in EquivalenceScenarioConfig().implementations
    finally:
        ATTENTION.unregister("extra")


def test_an_output_format_is_one_record(tmp_path, tiny_model, monkeypatch):
    """Register a format: the output config gets its switch and process_video writes it, nothing else edited."""

    class RangeWriter(formats.OutputWriter):
        def finish(self, store, on_progress):
            self.path.write_text(json.dumps({"min": store.min, "max": store.max, "frames": store.count}))

    original = formats.OUTPUTS.records()
    monkeypatch.setattr(formats, "OUTPUTS", formats.Registry("output"))
    for record in original:
        formats.OUTPUTS.register(record.name, record.value, help=record.help)
    formats.OUTPUTS.register("range", formats.OutputFormat("{stem}_range.json", RangeWriter), help="depth range")
    monkeypatch.setattr("vda.depth.process.OUTPUTS", formats.OUTPUTS)
    config = formats._output_config()
    assert {f.name for f in dataclasses.fields(config)} >= {"npz", "vis", "src", "png16", "range"}
    video = write_video(tmp_path / "fmt.mp4", synthetic_frames(5, 48, 64))
    out = tmp_path / "out"
    out.mkdir()
    result = process_video(
        tiny_model, probe(video), out, InferSettings(input_size=28), config(npz=False, vis=False, range=True, progress=False)
    )
    assert [p.name for p in result.outputs] == ["fmt_range.json"]
    assert json.loads((out / "fmt_range.json").read_text())["frames"] == 5


# ---------------------------------------------------------------- shape of the codebase
def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


LIBRARY = sorted((ROOT / "vda").rglob("*.py"))


def test_no_library_module_imports_an_entry_script():
    offenders = [str(p) for p in LIBRARY if _imports(p) & {"run_infer", "run_bench"}]
    assert offenders == []


COMMANDS = ("vda.infer", "vda.bench")


def test_the_library_never_imports_the_commands():
    library = [p for p in LIBRARY if p.parent.name not in ("infer", "bench") and "scenarios" not in p.parts]
    offenders = {str(p): m for p in library for m in _imports(p) if m.startswith(COMMANDS)}
    assert offenders == {}


def test_no_vda_module_is_imported_inside_a_function():
    """Imports of vda sit at the top of each module, so the import arrows are all in plain view (heavy optional
    packages, e.g. onnxruntime or mlflow, may be imported where they are used)."""
    offenders = []
    for path in [*LIBRARY, ROOT / "run_infer.py", ROOT / "run_bench.py"]:
        for func in ast.walk(ast.parse(path.read_text())):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    module = node.module if isinstance(node, ast.ImportFrom) else None
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module or ""]
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and any(n.split(".")[0] == "vda" for n in names):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("command", ["infer", "bench"])
def test_the_yaml_holds_only_the_generated_defaults_list_and_hydra_settings(command):
    conf = yaml.safe_load((CONF / f"{command}.yaml").read_text())
    assert set(conf) == {"defaults", "hydra"} and conf["defaults"] == [f"{command}_defaults", "_self_"]


def test_the_model_package_does_not_import_weights_or_the_factory():
    """weights and the factory import the model, never the other way round (no import loop)."""
    for path in (ROOT / "vda" / "model").glob("*.py"):
        assert not {m for m in _imports(path) if m in ("vda.weights", "vda.factory", "vda")}, path


@pytest.mark.parametrize("script", ["run_infer.py", "run_bench.py"])
def test_entry_scripts_stay_thin(script):
    assert len((ROOT / script).read_text().splitlines()) < 40


# modules where a loop would hide: each imported first, in a fresh interpreter
FIRST_IMPORTS = [
    "vda.weights",
    "vda.model",
    "vda.factory",
    "vda.attention",
    "vda.runtime.timing",
    "vda.config",
    "vda.infer.single",
    "vda.bench.scenarios.pipeline",
]


# One interpreter for all of them: before each, every vda module is dropped from sys.modules, so each is imported
# first (the third-party packages stay loaded: they cannot hide a loop in vda).
FIRST_IMPORT_CHECK = """
import importlib, sys, traceback
failures = []
for module in sys.argv[1:]:
    for name in [n for n in sys.modules if n == "vda" or n.startswith("vda.")]:
        del sys.modules[name]
    try:
        importlib.import_module(module)
    except Exception:
        failures.append(module + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_each_module_imports_first_without_a_loop():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_IMPORT_CHECK, *FIRST_IMPORTS], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
