"""The offline engine: the encoder-feature cache on and off, and one window through each graph backend."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vda import backends, build_model
from vda.backends import BackendConfig
from vda.bench.agreement import rel_l2
from vda.depth import WindowedDepth
from vda.runtime.device import synchronize
from vda.video import VideoReader, probe
from vda.video.synthetic import synthetic_clip

# The default and the graph backends (compile is left out: its first call takes minutes on a CPU).
WINDOW_BACKENDS = tuple(r.name for r in backends.BACKENDS.records() if r.name == BackendConfig.name or r.value.whole_windows)


@pytest.fixture(scope="module")
def decoded_clip(tmp_path_factory) -> list[np.ndarray]:
    """34 decoded frames: two windows, the second carrying keyframes and padding copies."""
    clip = synthetic_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 34, 64, 96, fps=30)
    return list(VideoReader(probe(clip)))


@pytest.mark.benchmark(group="pipeline feature cache")
@pytest.mark.parametrize("feature_cache", [True, False], ids=["cache", "no-cache"])
def test_pipeline_feature_cache(benchmark, bench_settings, decoded_clip, feature_cache):
    s = bench_settings
    model = build_model(s.encoders[0], device=s.device, precision=s.precision.value, checkpoint="random")

    def run():
        engine = WindowedDepth(model, input_size=s.size, feature_cache=feature_cache)
        depth = torch.cat([d.cpu() for d in engine.run(iter(decoded_clip))])
        return depth, engine.stats.encoded_frames

    depth, encoded = benchmark.pedantic(run, rounds=3, iterations=1)
    assert depth.shape == (34, 64, 96) and torch.isfinite(depth).all()
    assert encoded == (34 if feature_cache else 2 * 32)


@pytest.fixture(scope="module")
def graph_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDA_CACHE_DIR", str(tmp_path_factory.mktemp("vda-cache")))
        yield


@pytest.mark.benchmark(group="backends window")
@pytest.mark.parametrize("backend", WINDOW_BACKENDS)
def test_backend_window(benchmark, bench_settings, graph_cache, backend):
    s = bench_settings
    model = build_model(s.encoders[0], device=s.device, checkpoint="random")
    runner = backends.create(backend, model)
    x = torch.randn(1, 32, 3, s.size, s.size, generator=torch.Generator().manual_seed(0)).to(s.device)

    def window():
        with torch.inference_mode():
            depth = runner(x)
        synchronize(s.device)
        return depth.cpu()

    window()  # builds the graphs
    depth = benchmark.pedantic(window, rounds=3, iterations=1)
    with torch.inference_mode():
        reference = model(x).cpu()
    assert rel_l2(depth, reference) <= 1e-5
