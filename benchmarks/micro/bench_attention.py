"""Attention implementations at the shapes the model gives them.

* Encoder self-attention: ``[frames, heads, tokens, 64]`` with tokens = (size/14)^2 + 1 (1370 at 518) and the
  heads of vits (6), vitb (12) and vitl (16).
* Temporal attention, at each of the head's four temporal modules: sequences of T = 32 frames (a full window,
  whatever ``--bench-frames``), 8 heads, batch = the pixels of that feature map (5476 sequences x 8 heads at
  path_3 for 518), head dim = channels / 8, in float32 whatever the precision: the model runs its temporal
  blocks in float32.
"""

from __future__ import annotations

import pytest
import torch

from vda.attention import AttentionOp
from vda.model.temporal import MAX_FRAMES, TEMPORAL_DTYPE
from vda.model.video_depth_anything import ENCODERS, VideoDepthAnything
from vda.runtime.device import synchronize

TEMPORAL_HEADS = 8
ENCODER_HEAD_DIM = 64


def pytest_generate_tests(metafunc):
    settings = metafunc.config.vda_bench
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", settings.attention_backends())


def _qkv(batch: int, heads: int, length: int, head_dim: int, device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(batch, heads, length, head_dim, generator=generator).to(device, dtype) for _ in range(3))


def _run(benchmark, backend: str, q, k, v, device) -> torch.Tensor:
    attend = AttentionOp(backend)
    scale = q.shape[-1] ** -0.5

    def call():
        out = attend(q, k, v, scale)
        synchronize(device)
        return out

    with torch.inference_mode():
        return benchmark(call)


@pytest.mark.benchmark(group="encoder self-attention")
@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_encoder_self_attention(benchmark, bench_settings, backend, encoder):
    s = bench_settings
    tokens = s.patches**2 + 1
    heads = ENCODERS.get(encoder).num_heads
    q, k, v = _qkv(s.frames, heads, tokens, ENCODER_HEAD_DIM, s.device, s.precision.dtype)
    benchmark.extra_info.update({"shape": [s.frames, heads, tokens, ENCODER_HEAD_DIM], "dtype": str(q.dtype)})
    out = _run(benchmark, backend, q, k, v, s.device)
    assert out.shape == q.shape and torch.isfinite(out).all()


def temporal_sites(encoder: str, patches: int) -> dict[str, tuple[int, int]]:
    """Temporal module -> (positions h*w, channels) for a square ``patches`` x ``patches`` grid."""
    spec = ENCODERS.get(encoder)
    half = (patches - 1) // 2 + 1  # Conv2d k3 s2 p1 of layer_4
    return {
        "layer_3": (patches**2, spec.out_channels[2]),
        "layer_4": (half**2, spec.out_channels[3]),
        "path_4": (patches**2, spec.features),
        "path_3": ((2 * patches) ** 2, spec.features),
    }


def temporal_qkv(encoder: str, site: str, patches: int, device) -> tuple[torch.Tensor, ...]:
    """q, k, v of one temporal module's attention as the model runs it: a full window, in TEMPORAL_DTYPE."""
    positions, channels = temporal_sites(encoder, patches)[site]
    return _qkv(positions, TEMPORAL_HEADS, MAX_FRAMES, channels // TEMPORAL_HEADS, device, TEMPORAL_DTYPE)


@pytest.mark.benchmark(group="temporal attention")
@pytest.mark.parametrize("encoder", list(ENCODERS))
@pytest.mark.parametrize("site", ["layer_3", "layer_4", "path_4", "path_3"])
def test_temporal_attention(benchmark, bench_settings, backend, encoder, site):
    s = bench_settings
    q, k, v = temporal_qkv(encoder, site, s.patches, s.device)
    benchmark.extra_info.update({"shape": list(q.shape), "dtype": str(q.dtype)})
    out = _run(benchmark, backend, q, k, v, s.device)
    assert out.shape == q.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_temporal_sites_match_the_network(encoder):
    """The shapes benchmarked above are the ones the network's four temporal modules give their attention."""
    patches, frames = 5, 2  # a 70x70 input; the shapes follow the same rule at 518 (37 patches)
    model = VideoDepthAnything(encoder).eval()
    site = [None]
    seen: dict[str, set] = {}
    for name, module in zip(["layer_3", "layer_4", "path_4", "path_3"], model.head.motion_modules):
        module.register_forward_pre_hook(lambda m, args, name=name: site.__setitem__(0, name))
        module.register_forward_hook(lambda m, args, out: site.__setitem__(0, None))
    for op in {m for m in model.modules() if isinstance(m, AttentionOp)}:
        op.register_forward_hook(lambda op, args, out: site[0] and seen.setdefault(site[0], set()).add(args[0].shape))
    with torch.inference_mode():
        model(torch.zeros(1, frames, 3, 14 * patches, 14 * patches))
    expected = temporal_sites(encoder, patches)
    assert set(seen) == set(expected)
    for name, (positions, channels) in expected.items():
        heads_dim = channels // TEMPORAL_HEADS
        assert seen[name] == {torch.Size([positions, TEMPORAL_HEADS, frames, heads_dim])}, name
