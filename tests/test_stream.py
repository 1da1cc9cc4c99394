"""Streaming depth (vda.depth.stream): the published rule, its cached-projection speed-up, bounded state, reset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vda.video.synthetic import synthetic_frames
from vda.errors import InputShapeError
from vda import build_model
from vda.model.temporal import AttentionMemory, StreamCache, TemporalAttention
from vda.depth.preprocess import Preprocessor
from vda.depth.stream import StreamingDepth, context_frames

SIZE = 42  # network input 42x56 for 56x70 frames: a 3x4 patch grid
HEIGHT, WIDTH = 56, 70


def listed_contexts(last: int) -> list[list[int]]:
    """The rule written out with a Python list of frame indices: context of every frame 0..last."""
    held = [0] * 32
    contexts = [[]]
    for t in range(1, last + 1):
        contexts.append(held[:2] + held[-29:])
        held.append(t)
        if t > 10:
            del held[1]
        assert len(held) == min(32 + t, 42)
    return contexts


class ListMemory(AttentionMemory):
    """The published rule, literally: a list of the block's inputs, the offline attention over 32 of them."""

    def __init__(self, stream: StreamCache) -> None:
        super().__init__(stream)
        self.entries: list[torch.Tensor] = []

    def __call__(self, block: TemporalAttention, x: torch.Tensor) -> torch.Tensor:
        context = self.entries[:2] + self.entries[-29:] if self.entries else []
        window = torch.cat(context + [x])  # [slots, h*w, C]: one frame per slot
        out = block(window, frames=window.shape[0])[-1:]  # the new frame's row of the offline attention
        if not self.entries:
            self.entries = [x] * 32
        else:
            self.entries.append(x)
            if self.stream.frame > 10:
                del self.entries[1]
        return out


class ListCache(StreamCache):
    def new_memory(self) -> AttentionMemory:
        return ListMemory(self)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return synthetic_frames(60, HEIGHT, WIDTH, seed=3)


def run(stream: StreamingDepth, frames) -> np.ndarray:
    return np.stack([stream.step(frame) for frame in frames])


def max_rel(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(pred - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("t", [1, 5, 10, 11, 12, 41, 42, 59])
def test_context_frames_follow_the_list_rule(t):
    assert context_frames(t) == listed_contexts(t)[t]
    assert len(context_frames(t)) == 31


def test_context_frames_examples_and_long_run():
    assert context_frames(0) == []
    assert context_frames(1) == [0] * 31
    assert context_frames(59) == [0, 18] + list(range(30, 59))
    assert context_frames(1000) == [0, 1000 - 41] + list(range(1000 - 29, 1000))
    assert [context_frames(t) for t in range(200)] == listed_contexts(199)


def test_cached_and_direct_paths_equal_the_literal_rule(tiny_model, frames):
    reference = run(StreamingDepth(tiny_model, SIZE, cache=ListCache()), frames)
    cached = run(StreamingDepth(tiny_model, SIZE), frames)
    direct = run(StreamingDepth(tiny_model, SIZE, cached_projections=False), frames)
    assert reference.shape == (60, HEIGHT, WIDTH) and reference.dtype == np.float32
    assert max_rel(cached, reference) < 1e-5
    assert max_rel(direct, reference) < 1e-5
    # the context matters: a stream differs from each frame run alone (T=1) once it has history
    alone = np.stack([StreamingDepth(tiny_model, SIZE).step(f) for f in frames[40:42]])
    assert max_rel(alone, reference[40:42]) > 1e-3


def test_first_frame_is_the_offline_network_on_one_frame(tiny_model, frames):
    depth = StreamingDepth(tiny_model, SIZE).step(frames[0])
    x = Preprocessor((HEIGHT, WIDTH), SIZE, tiny_model.device)([frames[0]])
    with torch.inference_mode():
        offline = tiny_model(x[None])[0]  # [1, h, w]
        offline = F.interpolate(offline[:, None], size=(HEIGHT, WIDTH), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(depth, offline[0, 0].numpy(), rtol=0, atol=1e-5 * float(offline.abs().max()))


def test_state_is_constant_after_the_list_fills(tiny_model):
    stream = StreamingDepth(tiny_model, 28)
    sizes = []
    for frame in synthetic_frames(200, 28, 42, seed=4):
        stream.step(frame)
        sizes.append(stream.state_bytes)
        assert np.isfinite(stream.last_step_s) and stream.last_step_s > 0
    assert stream.frames == 200
    assert sizes[0] > 0
    assert set(sizes[41:]) == {sizes[41]}


def test_reset_starts_a_new_scene(tiny_model, frames):
    fresh = run(StreamingDepth(tiny_model, SIZE), frames[:6])
    stream = StreamingDepth(tiny_model, SIZE)
    run(stream, frames[20:30])
    with pytest.raises(InputShapeError, match="reset"):
        stream.step(np.zeros((28, 42, 3), np.uint8))
    stream.reset()
    assert stream.frames == 0 and stream.state_bytes == 0
    np.testing.assert_array_equal(run(stream, frames[:6]), fresh)
    stream.reset()
    assert stream.step(np.zeros((28, 42, 3), np.uint8)).shape == (28, 42)


def test_math_attention_and_metric_model(random_metric_checkpoint, frames):
    model = build_model("vits", metric=True, attention="math", checkpoint=random_metric_checkpoint)
    reference = run(StreamingDepth(model, SIZE, cache=ListCache()), frames[:12])
    cached = run(StreamingDepth(model, SIZE), frames[:12])
    assert max_rel(cached, reference) < 1e-5


def test_bf16_cached_projections_stay_close_to_the_direct_rule(random_checkpoint, frames):
    model = build_model("vits", precision="bf16", checkpoint=random_checkpoint)
    cached = run(StreamingDepth(model, SIZE), frames[:12])
    direct = run(StreamingDepth(model, SIZE, cached_projections=False), frames[:12])
    assert np.isfinite(cached).all()
    assert np.linalg.norm(cached - direct) / np.linalg.norm(direct) < 3e-2


def test_rejects_non_rgb_frames(tiny_model):
    with pytest.raises(InputShapeError, match="RGB uint8"):
        StreamingDepth(tiny_model, SIZE).step(np.zeros((HEIGHT, WIDTH), np.float32))


def test_a_non_finite_half_precision_frame_is_recomputed_in_fp32(monkeypatch):
    """The stream is not advanced by a failed decode, so the frame runs again in fp32 and the stream goes on."""
    from vda.errors import NonFiniteOutputError
    from vda.runtime.precision import Precision

    model = build_model("vits", checkpoint="random", device="cpu", precision="bf16")
    frames = synthetic_frames(4, HEIGHT, WIDTH, seed=9)
    reference = StreamingDepth(model, input_size=SIZE)
    expected = [reference.step(frames[0]), reference.step(frames[1])]
    decode, calls = model.decode, []

    def overflow_once(*args, **kwargs):
        calls.append(kwargs.get("precision"))
        if len(calls) == 2:  # frame 1, in bf16
            raise NonFiniteOutputError("simulated overflow")
        return decode(*args, **kwargs)

    monkeypatch.setattr(model, "decode", overflow_once)
    stream = StreamingDepth(model, input_size=SIZE)
    first, second = stream.step(frames[0]), stream.step(frames[1])
    assert calls == [None, None, Precision.fp32] and stream.fp32_fallback_frames == 1 and stream.frames == 2
    np.testing.assert_array_equal(first, expected[0])
    assert np.isfinite(second).all() and np.abs(second - expected[1]).max() < 0.1 * np.abs(expected[1]).max()
    assert np.isfinite(stream.step(frames[2])).all() and stream.frames == 3
