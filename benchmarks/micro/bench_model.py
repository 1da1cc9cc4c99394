"""The network's two halves on one window: the encoder (frames independently) and the temporal DPT head."""

from __future__ import annotations

import pytest
import torch

from vda import build_model
from vda.runtime.device import synchronize

_MODELS: dict[str, torch.nn.Module] = {}


def pytest_generate_tests(metafunc):
    settings = metafunc.config.vda_bench
    if "encoder" in metafunc.fixturenames:
        metafunc.parametrize("encoder", settings.encoders)
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", settings.attention_backends())


@pytest.fixture
def model(bench_settings, encoder, backend):
    """One model per encoder for the session (seeded random weights), switched to ``backend``."""
    if encoder not in _MODELS:
        s = bench_settings
        _MODELS[encoder] = build_model(
            encoder, device=s.device, precision=s.precision.value, checkpoint="random", attention=backend
        )
    net = _MODELS[encoder]
    net.set_attention(backend)
    return net


@pytest.fixture
def frames(bench_settings) -> torch.Tensor:
    s = bench_settings
    generator = torch.Generator().manual_seed(0)
    return torch.randn(s.frames, 3, s.size, s.size, generator=generator).to(s.device)


@pytest.mark.benchmark(group="encoder")
def test_encoder(benchmark, bench_settings, model, frames):
    def call():
        features = model.encode(frames)
        synchronize(bench_settings.device)
        return features

    with torch.inference_mode():
        features = benchmark(call)
    assert len(features) == 4 and features[0].shape[:2] == (frames.shape[0], bench_settings.patches**2)


@pytest.mark.benchmark(group="head")
def test_head(benchmark, bench_settings, model, frames):
    s = bench_settings
    with torch.inference_mode():
        features = model.encode(frames)

        def call():
            depth = model.decode(features, batch=1, frames=s.frames, patch_hw=(s.patches, s.patches))
            synchronize(s.device)
            return depth

        depth = benchmark(call)
    assert depth.shape == (1, s.frames, s.size, s.size) and torch.isfinite(depth).all()
