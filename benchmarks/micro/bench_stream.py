"""Stream mode: a short stream step by step, with cached key/value projections and re-projected ones."""

from __future__ import annotations

import numpy as np
import pytest

from vda import build_model
from vda.depth.stream import StreamingDepth
from vda.video.synthetic import synthetic_frames

MODES = {"cached": True, "direct": False}


@pytest.mark.benchmark(group="stream")
@pytest.mark.parametrize("mode", list(MODES))
def test_stream_steps(benchmark, bench_settings, mode):
    s = bench_settings
    model = build_model(s.encoders[0], device=s.device, precision=s.precision.value, checkpoint="random")
    frames = synthetic_frames(16, 64, 96)

    def run():
        stream = StreamingDepth(model, input_size=s.size, cached_projections=MODES[mode])
        return np.stack([stream.step(frame) for frame in frames])

    depth = benchmark.pedantic(run, rounds=3, iterations=1)
    assert depth.shape == (16, 64, 96) and np.isfinite(depth).all()
