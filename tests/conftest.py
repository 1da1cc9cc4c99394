"""Shared fixtures: synthetic videos written with PyAV, seeded random checkpoints, tiny models, one graph cache,
one initialised MLflow store, and ``run_cli``: the entry scripts' Hydra ``main()`` called in this process.

Keeping the suite fast (docs/development.md): build what is expensive once per session here, call the commands
in-process through ``run_cli``, and start a subprocess only where the process boundary is what a test checks.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

import av
import numpy as np
import pytest
import torch

from vda import build_model
from vda.video.synthetic import synthetic_frames, write_video
from vda.weights import random_state_dict, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Under pytest-xdist, each worker gets its share of the cores for torch (and for the processes it starts):
    two workers with two threads each on two cores would wait on each other's spinning threads."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = max(1, (os.cpu_count() or 1) // int(workers))
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)


def decode_all(path: Path) -> np.ndarray:
    """Every frame of the first video stream as RGB uint8 (independent of vda.video)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture
def make_video(tmp_path) -> Callable[..., Path]:
    """``make_video(name, count, height=48, width=64, fps=24, seed=0)`` -> path of a fresh H.264 clip."""

    def make(name: str = "clip.mp4", count: int = 30, height: int = 48, width: int = 64, fps=24, seed: int = 0) -> Path:
        return write_video(tmp_path / name, synthetic_frames(count, height, width, seed), fps=fps)

    return make


@pytest.fixture(scope="session")
def clip_factory(tmp_path_factory) -> Callable[..., Path]:
    """``clip_factory(count, height=48, width=64, fps=24, seed=0)`` -> a shared H.264 clip, written once per session.

    Read-only for the tests: a test that changes a clip copies it into its own ``tmp_path`` first."""
    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple, Path] = {}

    def make(count: int, height: int = 48, width: int = 64, fps=24, seed: int = 0) -> Path:
        key = (count, height, width, str(fps), seed)
        if key not in made:
            name = f"clip_{count}x{height}x{width}_{str(fps).replace('/', '-')}fps_s{seed}.mp4"
            made[key] = write_video(folder / name, synthetic_frames(count, height, width, seed), fps=fps)
        return made[key]

    return make


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """A seeded random relative vits checkpoint saved as a .pth file."""
    path = tmp_path_factory.mktemp("ckpt") / "vits_random.pth"
    return save_checkpoint(random_state_dict("vits", metric=False, seed=1), path)


@pytest.fixture(scope="session")
def random_metric_checkpoint(tmp_path_factory) -> Path:
    """A seeded random metric vits checkpoint saved as a .pth file."""
    path = tmp_path_factory.mktemp("ckpt") / "metric_vits_random.pth"
    return save_checkpoint(random_state_dict("vits", metric=True, seed=2), path)


@pytest.fixture(scope="session")
def tiny_model(random_checkpoint):
    """Relative vits loaded from ``random_checkpoint``, fp32 on CPU."""
    return build_model("vits", metric=False, device="cpu", precision="fp32", checkpoint=random_checkpoint)


@pytest.fixture(scope="session")
def tiny_metric_model(random_metric_checkpoint):
    """Metric vits loaded from ``random_metric_checkpoint``, fp32 on CPU."""
    return build_model("vits", metric=True, device="cpu", precision="fp32", checkpoint=random_metric_checkpoint)


# ---------------------------------------------------------------- graph cache (exports are the slow part)
GRAPH_INPUT_HW = (28, 42)  # the smallest network input of the suite: a 2x3 patch grid, what input_size=28 gives 48x64


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory):
    """One graph cache for the whole session, never the user's: every test that builds a graph backend for
    ``tiny_model`` at ``GRAPH_INPUT_HW`` shares one ONNX export and one OpenVINO conversion. A test that damages
    an entry copies it into its own folder first."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("vda-cache")
        mp.setenv("VDA_CACHE_DIR", str(root))
        yield root


# ---------------------------------------------------------------- MLflow
@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """A sqlite MLflow store with its schema created (seconds on a busy machine): copy it, never write to it."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path, empty_mlflow_db) -> str:
    """This test's own sqlite store, ``tmp_path / "mlflow.db"``, ready to use (a copy of an initialised one)."""
    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def mlflow_runs(uri: str, experiment: str) -> list:
    """Every run of ``experiment`` in the store at ``uri`` (none when the experiment does not exist)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


# ---------------------------------------------------------------- the commands, in this process
@dataclass
class CliResult:
    """What a run of an entry script gave: its exit status and what it wrote to stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _entry_module(script: str) -> ModuleType:
    """``run_infer.py`` / ``run_bench.py`` imported once as modules named ``run_infer`` / ``run_bench``."""
    name = Path(script).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _reset_global_state(root_handlers: list, root_level: int) -> None:
    """What a Hydra run and an MLflow run leave behind in the process: Hydra's singleton and its logging
    handlers, MLflow's active run, tracking URI and experiment."""
    import mlflow
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    root = logging.getLogger()
    for handler in root.handlers:
        if handler not in root_handlers:
            handler.close()
    root.handlers[:] = root_handlers
    root.setLevel(root_level)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    from mlflow.tracking import fluent

    fluent._active_experiment_id = None


@pytest.fixture
def run_cli(tmp_path, monkeypatch, capsys) -> Callable[..., CliResult]:
    """``run_cli(script, *overrides, multirun=False)`` runs ``run_infer.py`` or ``run_bench.py`` as the command
    line would, in this process: its Hydra ``main()`` with ``sys.argv`` set, the working directory ``tmp_path``
    and Hydra's output folders under it, stdout and stderr captured, the exit status from ``SystemExit`` (0 when
    ``main()`` returns). Nothing is added to the overrides: the test states device, store and sizes itself."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    calls = iter(range(1000))

    def run(script: str, *overrides: str, multirun: bool = False) -> CliResult:
        module = _entry_module(script)
        call = next(calls)
        argv = [
            str(ROOT / script),
            # imported as a module, Hydra would look for the config folder as a package: name it as a folder
            f"--config-path={ROOT / 'conf'}",
            *(["-m"] if multirun else []),
            *overrides,
            f"hydra.run.dir={tmp_path / 'hydra' / str(call)}",
            f"hydra.sweep.dir={tmp_path / 'sweep' / str(call)}",
        ]
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", argv)
        status = 0
        try:
            module.main()
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            _reset_global_state(handlers, level)
        out, err = capsys.readouterr()
        return CliResult(status, out, err)

    return run


@pytest.fixture
def one_torch_thread():
    """Tiny inputs are many small operations: on a busy machine a second thread mostly waits at barriers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
