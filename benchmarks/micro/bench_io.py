"""Writing the outputs: the preview colour map, and a run with no network (the I/O ceiling), pipelined or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vda.bench.no_model import NoModel
from vda.depth.process import process_video
from vda.depth.settings import InferSettings
from vda.outputs.formats import OutputConfig
from vda.video import probe
from vda.video.synthetic import synthetic_clip
from vda.video.writer import colorize, inferno_lut


@pytest.mark.benchmark(group="io")
def test_io_colormap(benchmark, bench_settings):
    side = bench_settings.size
    depth = np.random.default_rng(0).uniform(0.5, 50.0, (16, side, side)).astype(np.float32)
    image = benchmark(colorize, depth, 0.5, 50.0, inferno_lut())
    assert image.shape == (16, side, side, 3) and image.dtype == np.uint8


@pytest.fixture(scope="module")
def io_clip(tmp_path_factory, bench_settings) -> Path:
    side = bench_settings.size
    return synthetic_clip(tmp_path_factory.mktemp("io") / "io.mp4", 40, side, 2 * side, fps=30)


@pytest.mark.benchmark(group="io")
@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sequential"])
def test_io_stub_run(benchmark, bench_settings, io_clip, tmp_path, pipelined):
    info = probe(io_clip)
    settings = InferSettings(input_size=bench_settings.size, pipelined=pipelined)
    outputs = OutputConfig(npz=True, vis=True, src=True, progress=False)
    runs = iter(range(1_000_000))

    def run():
        out = tmp_path / str(next(runs))
        out.mkdir()
        return process_video(NoModel(bench_settings.device), info, out, settings, outputs)

    result = benchmark.pedantic(run, rounds=3, iterations=1)
    assert result.frames == 40
