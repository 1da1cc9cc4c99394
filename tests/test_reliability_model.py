"""Half precision, alignment and device-memory failures: provoked, then recovered from (issue 8)."""

from __future__ import annotations

import logging

import pytest
import torch
from vda.video.synthetic import synthetic_frames

from vda.errors import DeviceMemoryError, NonFiniteOutputError
from vda import build_model
from vda.depth import WindowAligner, WindowedDepth
from vda.depth.align import fit_scale_shift
from vda.runtime.oom import OOMGuard

FRAMES = synthetic_frames(20, 28, 28, seed=3)  # one window at input_size 28


def run(model, feature_cache=True):
    engine = WindowedDepth(model, input_size=28, feature_cache=feature_cache)
    return torch.cat(list(engine.run(iter(FRAMES)))), engine.stats


def scaled(checkpoint, precision, attention="math", **factors):
    """The seeded model with the weights whose names contain each key multiplied by its factor."""
    model = build_model("vits", attention=attention, precision=precision, checkpoint=checkpoint)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            for part, factor in factors.items():
                if part in name and name.endswith("weight"):
                    weight.mul_(factor)
    return model


# ---------------------------------------------------------------- which operations overflow, kept in float32
@pytest.mark.parametrize("part", ["to_q", "ff.net.0"])
def test_temporal_overflow_sites_run_in_float32_under_fp16_autocast(random_checkpoint, part):
    # x100 on the temporal q/k projections (or the GEGLU projection) puts q.k (or value*gelu(gate)) past 65504
    factors = {"to_q": 100.0, "to_k": 100.0} if part == "to_q" else {part: 100.0}
    model = scaled(random_checkpoint, "fp16", **{k: v for k, v in factors.items()})
    module = model.head.motion_modules[0].temporal_transformer
    x = torch.randn(1, module.proj_in.in_features, 32, 2, 2) * 3
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        out = module(x)
        block = module.transformer_blocks[0]
        inner = module.proj_in(module.norm(x.transpose(1, 2).flatten(0, 1)).permute(0, 2, 3, 1).flatten(1, 2))
        # the same block without the float32 region overflows: proof that the provocation reaches float16's limit
        half = inner.half()
        for attention, norm in zip(block.attention_blocks, block.norms):
            half = half + attention(norm(half).half(), 32).half()
        half = half + block.ff(block.ff_norm(half).half()).half()
    assert torch.isfinite(out).all()
    assert not torch.isfinite(half).all()


def test_float32_block_is_bitwise_the_plain_computation(random_checkpoint):
    model = build_model("vits", checkpoint=random_checkpoint)
    block = model.head.motion_modules[1].temporal_transformer.transformer_blocks[0]
    x = torch.randn(32 * 2, 4, block.ff_norm.normalized_shape[0])
    with torch.inference_mode():
        plain = x
        for attention, norm in zip(block.attention_blocks, block.norms):
            plain = plain + attention(norm(plain), 32)
        plain = plain + block.ff(block.ff_norm(plain))
        assert torch.equal(block(x, 32), plain)


# ---------------------------------------------------------------- non-finite windows recomputed in float32
def test_non_finite_fp16_windows_are_recomputed_in_fp32(random_checkpoint, caplog):
    # the first head projection x1e6 overflows float16 in the convolutions, outside the temporal blocks
    half = scaled(random_checkpoint, "fp16", **{"head.projects.0": 1e6})
    full = scaled(random_checkpoint, "fp32", **{"head.projects.0": 1e6})
    with pytest.raises(NonFiniteOutputError, match="fp16"):  # what a plain forward does
        with torch.inference_mode():
            half.decode(half.encode(torch.zeros(2, 3, 28, 28)), 1, 2, (2, 2))
    with caplog.at_level(logging.WARNING, logger="vda.depth.engine"):
        depth, stats = run(half)
    reference, _ = run(full)
    assert torch.isfinite(depth).all() and depth.shape == (20, 28, 28)
    assert stats.fp32_fallback_windows == stats.windows == 1
    assert sum("fp32_fallback_windows" in r.getMessage() for r in caplog.records) == 1  # warned once
    # the fallback decodes fp16 encoder features in float32: close to the all-float32 run
    assert float((depth - reference).norm() / reference.norm()) < 1e-2


def test_non_finite_encoder_features_are_recomputed_in_fp32(random_checkpoint):
    half = scaled(random_checkpoint, "fp16", **{"pretrained.blocks.0.mlp.fc1": 3e3, "pretrained.blocks.0.mlp.fc2": 3e3})
    with torch.inference_mode():
        features = half.encode(torch.from_numpy(FRAMES[:2]).permute(0, 3, 1, 2).float() / 255)
    assert not all(torch.isfinite(f).all() for f in features)  # the provocation reaches the encoder
    for cache in (True, False):
        depth, stats = run(half, feature_cache=cache)
        assert torch.isfinite(depth).all()
        assert stats.fp32_fallback_windows == stats.windows == 1


def test_finite_fp16_runs_do_not_fall_back(random_checkpoint):
    _, stats = run(build_model("vits", precision="fp16", checkpoint=random_checkpoint))
    assert stats.fp32_fallback_windows == 0


def test_window_non_finite_in_fp32_too_is_an_error(random_checkpoint):
    model = build_model("vits", precision="fp16", checkpoint=random_checkpoint)
    with torch.no_grad():
        model.head.scratch.output_conv1.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError, match="even in float32"):
        run(model)


# ---------------------------------------------------------------- degenerate alignment
def test_fit_refuses_flat_inverted_and_non_finite_systems():
    target = torch.rand(2, 5, 5) + 0.5
    ramp = torch.linspace(1, 2, 50).view(2, 5, 5)
    assert fit_scale_shift(ramp, ramp * 2 + 1) == pytest.approx((2.0, 1.0), rel=1e-5)
    assert fit_scale_shift(torch.full((2, 5, 5), 3.0), target) is None  # flat: singular system
    assert fit_scale_shift(torch.full((2, 5, 5), 3.0) + 1e-9 * ramp, target) is None  # flat up to rounding
    assert fit_scale_shift(ramp, 5 - ramp) is None  # negative scale would swap near and far
    assert fit_scale_shift(ramp, torch.full((2, 5, 5), float("inf"))) is None


@pytest.mark.parametrize("second", ["flat", "inverted"])
def test_degenerate_window_is_aligned_with_scale_one_and_warned_once(second, caplog):
    first = torch.rand(32, 4, 4) + 1
    windows = [torch.full((32, 4, 4), 2.0) if second == "flat" else 3 - first for _ in range(2)]
    aligner = WindowAligner()
    with caplog.at_level(logging.WARNING, logger="vda.depth.align"):
        outputs = [aligner.push(first)] + [aligner.push(w) for w in windows] + [aligner.finish()]
    assert aligner.scales[1:] == [(1.0, 0.0), (1.0, 0.0)] and aligner.degenerate_windows == 2
    assert all(torch.isfinite(o).all() for o in outputs)
    assert sum("degenerate" in r.getMessage() for r in caplog.records) == 1


# ---------------------------------------------------------------- device out of memory
def oom_once(model, monkeypatch, calls):
    decode = model.decode

    def flaky(*args, **options):
        calls.append(model.head.micro_batch)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return decode(*args, **options)

    monkeypatch.setattr(model, "decode", flaky)


def test_oom_in_the_head_is_retried_with_micro_batch_one(random_checkpoint, monkeypatch, caplog):
    model = build_model("vits", checkpoint=random_checkpoint)
    expected, _ = run(model)
    calls = []
    oom_once(model, monkeypatch, calls)
    with caplog.at_level(logging.WARNING, logger="vda.runtime.oom"):
        depth, _ = run(model)
    assert calls == [4, 1] and model.head.micro_batch == 1  # failed at 4, retried (and kept) at 1
    torch.testing.assert_close(depth, expected, rtol=1e-4, atol=1e-4)  # per-frame micro-batches: same depth
    assert any("micro-batch 4 -> 1" in r.getMessage() for r in caplog.records)


def test_oom_after_the_retry_names_the_options(random_checkpoint, monkeypatch):
    model = build_model("vits", checkpoint=random_checkpoint)

    def always(*args, **options):
        raise RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)")

    monkeypatch.setattr(model, "decode", always)
    with pytest.raises(DeviceMemoryError, match=r"infer\.input_size=28.*infer\.max_res=") as info:
        run(model)
    assert "\n" not in str(info.value)


def test_other_errors_are_not_taken_for_oom():
    guard = OOMGuard(build_model("vits", checkpoint=None), 28)

    def broken():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        guard.call(broken)
    assert guard.retries == 0


def test_oom_in_the_encoder_is_retried_one_frame_at_a_time(random_checkpoint, monkeypatch):
    model = build_model("vits", checkpoint=random_checkpoint)
    expected, _ = run(model)
    encode, batches = model.encode, []

    def flaky(x, precision=None):
        batches.append(x.shape[0])
        if len(batches) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return encode(x, precision)

    monkeypatch.setattr(model, "encode", flaky)
    depth, _ = run(model)
    assert batches == [20] + [1] * 20 and model.head.micro_batch == 4  # the head is left alone
    torch.testing.assert_close(depth, expected, rtol=1e-4, atol=1e-4)
