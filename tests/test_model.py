"""The network: checkpoint layout, attention equivalence, temporal mixing, input checks."""

import json
import platform
from pathlib import Path

import pytest
import torch

from vda.errors import InputShapeError, NonFiniteOutputError
from vda import build_model
from vda.model import ENCODERS, VideoDepthAnything
from vda.model.dinov2 import LayerScale
from vda.weights import random_state_dict

MANIFESTS = Path(__file__).parent / "data" / "checkpoint_keys"


@pytest.fixture(scope="module")
def model():
    return build_model("vits", attention="sdpa", checkpoint="random", seed=3)


def frames(t=4, h=42, w=56, seed=0):
    return torch.randn(1, t, 3, h, w, generator=torch.Generator().manual_seed(seed))


def rel_l2(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_state_dict_matches_official_manifest(encoder):
    manifest = json.loads((MANIFESTS / f"{encoder}.json").read_text())
    got = [[k, list(v.shape)] for k, v in VideoDepthAnything(encoder).state_dict().items()]
    assert got == manifest  # same keys, same order, same shapes


def test_random_weights_are_non_trivial():
    state = random_state_dict("vits", seed=0)
    for name, value in state.items():
        if name.endswith("pos_encoder.pe"):
            continue  # fixed sinusoidal buffer
        assert torch.count_nonzero(value) == value.numel(), name
    assert state["head.motion_modules.3.temporal_transformer.proj_out.weight"].abs().mean() > 1e-3
    assert torch.equal(random_state_dict("vits", seed=0)["pretrained.pos_embed"], state["pretrained.pos_embed"])
    assert not torch.equal(random_state_dict("vits", seed=1)["pretrained.pos_embed"], state["pretrained.pos_embed"])


def test_output_shape_and_dtype(model):
    with torch.no_grad():
        depth = model(frames(t=3, h=42, w=70))
    assert depth.shape == (1, 3, 42, 70)
    assert depth.dtype == torch.float32
    assert depth.std() > 0


def test_sdpa_and_math_agree(model):
    x = frames()
    with torch.no_grad():
        model.set_attention("sdpa")
        sdpa = model(x)
        model.set_attention("math")
        math = model(x)
        model.set_attention("sdpa")
    assert rel_l2(sdpa, math) <= 1e-5
    assert not torch.equal(sdpa, math)  # really two implementations


def test_backend_switch_reaches_every_attention_layer(model):
    model.set_attention("math")
    ops = {id(m.attend) for m in model.modules() if hasattr(m, "attend")}
    assert len(ops) == 1 and model.attention.name == "math"
    assert sum(1 for m in model.modules() if hasattr(m, "attend")) == 12 + 4 * 2
    model.set_attention("sdpa")


def test_temporal_modules_mix_time(model):
    x = frames(t=4)
    y = x.clone()
    y[:, 0] = torch.randn_like(y[:, 0])
    with torch.no_grad():
        a, b = model(x), model(y)
    # frame 0 changed; the depth of every other frame must change too
    for t in range(1, 4):
        assert (a[0, t] - b[0, t]).abs().max() > 1e-3


def test_encode_gives_four_token_maps_per_frame(model):
    # forward is encode + decode, so comparing them checks nothing; the golden tests (test_golden.py) hold
    # forward to the published network and the pipeline, which calls encode and decode apart, to its pipeline
    with torch.no_grad():
        features = model.encode(frames(t=3).flatten(0, 1))
    assert len(features) == 4 and all(f.shape == (3, 12, 384) for f in features)


def test_positional_table_at_pretrain_size_is_used_as_is(model):
    enc = model.pretrained
    table = enc.interpolate_pos_encoding(1 + 37 * 37, 37, 37, torch.float32)
    assert torch.equal(table, enc.pos_embed)
    resized = enc.interpolate_pos_encoding(1 + 3 * 5, 3, 5, torch.float32)
    assert resized.shape == (1, 16, 384)
    assert torch.equal(resized[:, 0], enc.pos_embed[:, 0])


def test_too_many_frames_refused(model):
    with pytest.raises(InputShapeError, match="at most 32 frames"):
        model(torch.zeros(1, 33, 3, 14, 14))


@pytest.mark.parametrize("shape", [(1, 2, 3, 43, 56), (1, 2, 3, 42, 50), (2, 3, 42, 56), (1, 2, 1, 42, 56)])
def test_bad_shapes_refused(model, shape):
    with pytest.raises(InputShapeError):
        model(torch.zeros(shape))


def test_non_finite_depth_is_reported():
    model = build_model("vits", checkpoint="random")
    with torch.no_grad():
        model.pretrained.norm.weight.fill_(float("nan"))
        with pytest.raises(NonFiniteOutputError, match="NaN/inf"):
            model(frames(t=2))


def test_fp16_overflow_is_detected_not_returned():
    model = build_model("vits", checkpoint="random", precision="fp16")
    with torch.no_grad():
        model.head.projects[0].weight.mul_(1e6)  # activations far beyond fp16's 65504
        with pytest.raises(NonFiniteOutputError, match="fp16"):
            model(frames(t=2))


@pytest.mark.parametrize("precision, tolerance", [("bf16", 5e-2), ("fp16", 1e-2)])
def test_half_precision_close_to_fp32(precision, tolerance):
    x = frames(t=2)
    reference = build_model("vits", checkpoint="random")
    half = build_model("vits", checkpoint="random", precision=precision)
    with torch.no_grad():
        assert rel_l2(half(x), reference(x)) < tolerance


def test_fused_mlp_path_is_on_for_x86_and_equals_the_modules(model, monkeypatch):
    """The encoder's MLP takes oneDNN's fused linear+GELU on x86 CPUs in float32 inference (every block of a
    forward), gives the modules' numbers, and stays off where it does not apply."""
    from vda.model import dinov2, fused

    if platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available():
        assert fused.ONEDNN_LINEAR, "the fused path should be on for this x86 build"
    torch.manual_seed(0)
    mlp = dinov2.Mlp(64, 256)
    x = torch.randn(3, 50, 64)
    with torch.inference_mode():
        assert fused.fused_applies(x) is fused.ONEDNN_LINEAR
        plain = mlp.fc2(mlp.act(mlp.fc1(x)))
        assert ((mlp(x) - plain).norm() / plain.norm()).item() < 1e-6
        assert not fused.fused_applies(x.bfloat16())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fused.fused_applies(x)
    assert not fused.fused_applies(x)  # autograd on
    calls = []
    real = dinov2.linear_gelu_linear
    monkeypatch.setattr(dinov2, "linear_gelu_linear", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        model.encode(torch.rand(2, 3, 28, 28))
    assert len(calls) == (len(model.pretrained.blocks) if fused.ONEDNN_LINEAR else 0)


def test_layer_scale_adds_the_scaled_branch_in_one_pass():
    torch.manual_seed(0)
    scale = LayerScale(8)
    scale.gamma.data = torch.randn(8)
    residual, branch = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.allclose(scale(residual, branch), residual + branch * scale.gamma, rtol=1e-6, atol=1e-7)


def test_decode_of_the_first_slots_equals_the_whole_windows(model):
    """``slots=k`` gives the first k maps of each window the full decode gives (two windows in a batch)."""
    x = frames(t=6, seed=2).expand(2, -1, -1, -1, -1).contiguous()
    x[1] = x[1].flip(0)
    with torch.inference_mode():
        features = model.encode(x.flatten(0, 1))
        whole = model.decode(features, 2, 6, (3, 4))
        first = model.decode(features, 2, 6, (3, 4), slots=4)
    assert first.shape == (2, 4, 42, 56)
    assert rel_l2(first, whole[:, :4]) < 1e-5  # float32 rounding: other batch sizes in the per-frame stages
