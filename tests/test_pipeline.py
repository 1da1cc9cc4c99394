"""The streaming pipeline against a plain, slow implementation of the offline algorithm of the spec."""

from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import decode_all
from vda.video.synthetic import synthetic_frames, write_video
from hydra import compose, initialize_config_dir

from vda.errors import ConfigError, NonFiniteOutputError
from vda.depth import (
    WindowAligner,
    WindowedDepth,
    network_size,
    padding,
    plan_windows,
    scale_shift,
    window_starts,
)
from vda.infer.config import register_configs
from vda.config import to_object
from vda.infer.single import run_inference
from vda.runtime.timing import since_process_start

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# ---------------------------------------------------------------- reference: the spec, step by step, no streaming
def reference_depth(model, frames: np.ndarray, input_size: int) -> np.ndarray:
    n, height, width = frames.shape[:3]
    # 1. input size
    size = input_size
    ratio = max(height, width) / min(height, width)
    if ratio > 1.78:
        size = round(int(size * 1.777 / ratio) / 14) * 14

    # 2. lower-bound resize to multiples of 14, bicubic, normalise
    def side(x):
        y = int(np.round(x / 14) * 14)
        return y if y >= size else int(np.ceil(x / 14) * 14)

    scale = max(size / height, size / width)
    net_hw = (side(scale * height), side(scale * width))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=net_hw, mode="bicubic", align_corners=False)
    x = (x - MEAN) / STD
    # 3. pad with copies of the last frame
    pad = (22 - n % 22) % 22 + 10
    x = torch.cat([x, x[-1:].repeat(pad, 1, 1, 1)])
    # 4-5. windows with keyframe carry-over; the whole network on each window, no cache
    maps, previous = [], None
    with torch.no_grad():
        for start in range(0, n, 22):
            window = x[start : start + 32].clone()
            if previous is not None:
                window[:10] = previous[[0, 12, 24, 25, 26, 27, 28, 29, 30, 31]]
            depth = model(window.unsqueeze(0))[0]
            depth = F.interpolate(depth.unsqueeze(1), size=(height, width), mode="bilinear", align_corners=True)[:, 0]
            maps.extend(depth.double().numpy())
            previous = window
    # 6. alignment and blending
    aligned, references = [], []
    for w0 in range(0, len(maps), 32):
        if not aligned:
            aligned.extend(maps[:32])
            references = [maps[0], maps[12]]
            continue
        if model.metric:
            s, t = 1.0, 0.0
        else:
            p = np.concatenate([maps[w0].ravel(), maps[w0 + 1].ravel()])
            q = np.concatenate([r.ravel() for r in references])
            (s, t), *_ = np.linalg.lstsq(np.stack([p, np.ones_like(p)], axis=1), q, rcond=None)
        scaled = [np.maximum(d * s + t, 0) for d in maps[w0 : w0 + 32]]
        for i in range(8):
            w = i / 7
            aligned[-8 + i] = aligned[-8 + i] * (1 - w) + scaled[2 + i] * w
        aligned.extend(scaled[10:32])
        references = [references[0], scaled[12]]
    # 7. keep the first n
    return np.stack(aligned[:n]).astype(np.float32)


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


def compose_infer(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="infer", overrides=overrides)


def run_composed(cfg):
    """What run_infer.py does with the composed config: type it once, run the command."""
    return run_inference(to_object(cfg))


def infer_overrides(video: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        f"input={video}",
        f"output_dir={out}",
        "device=cpu",
        "precision=fp32",
        f"model.checkpoint={checkpoint}",
        "infer.input_size=28",
        "output.progress=false",
        "mlflow.enabled=false",
        *extra,
    ]


# ---------------------------------------------------------------- window planning
@pytest.mark.parametrize(
    "length, pad, windows",
    [(1, 31, 1), (21, 11, 1), (22, 10, 1), (23, 31, 2), (32, 22, 2), (33, 21, 2), (70, 28, 4)],
)
def test_padding_and_window_counts(length, pad, windows):
    assert padding(length) == pad
    assert len(window_starts(length)) == windows
    plan = plan_windows(length)
    assert len(plan.windows) == windows and plan.padding == pad
    assert plan.padded_length == plan.aligned_length == 32 + 22 * (windows - 1)
    assert all(len(w) == 32 and max(w) <= length - 1 for w in plan.windows)
    assert max(plan.windows[-1]) == length - 1
    covered = set().union(*plan.windows)
    assert covered == set(range(length))


def test_window_slots_carry_keyframes_and_clamp_padding():
    plan = plan_windows(70)
    assert plan.windows[0] == tuple(range(32))
    assert plan.windows[1] == (0, 12, *range(24, 54))
    assert plan.windows[2] == (0, 34, *range(46, 70), *[69] * 6)  # padded slots hold copies of frame 69
    assert plan.windows[3] == (0, 56, 68, *[69] * 29)


def test_zero_length_is_refused():
    with pytest.raises(ValueError):
        padding(0)


# ---------------------------------------------------------------- preprocessing sizes
@pytest.mark.parametrize(
    "hw, size, expected",
    [
        ((480, 640), 518, (518, 686)),  # 690.67 -> 686 (round to nearest multiple of 14)
        ((720, 1280), 518, (518, 924)),
        ((1080, 1920), 518, (518, 924)),
        ((48, 64), 28, (28, 42)),  # 37.33 -> 42
        ((64, 48), 28, (42, 28)),
        ((100, 400), 518, (224, 896)),  # ratio 4 > 1.78: size round(int(518*1.777/4)/14)*14 = 224
        ((518, 518), 518, (518, 518)),
        ((500, 509), 518, (518, 532)),  # 518*509/500 = 527.3 -> 532
        ((480, 640), 505, (518, 672)),  # 505 rounds to 504 < 505: the next multiple of 14 up
        ((100, 150), 14, (14, 28)),  # 21 rounds half to even -> 28
    ],
)
def test_network_size_lower_bound(hw, size, expected):
    assert network_size(*hw, size) == expected


# ---------------------------------------------------------------- alignment
def test_scale_shift_recovers_known_values():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.uniform(0.5, 5.0, (2, 12, 16)).astype(np.float32))
    s, t = 2.5, -0.3
    prediction = (target - t) / s
    got_s, got_t = scale_shift(prediction, target)
    assert got_s == pytest.approx(s, rel=1e-5) and got_t == pytest.approx(t, abs=1e-5)
    assert scale_shift(torch.ones(2, 3, 3), target[:, :3, :3]) == (1.0, 0.0)


def test_aligner_maps_second_window_onto_first():
    rng = np.random.default_rng(1)
    first = torch.from_numpy(rng.uniform(1.0, 3.0, (32, 6, 8)).astype(np.float32))
    truth = torch.from_numpy(rng.uniform(1.0, 3.0, (32, 6, 8)).astype(np.float32))
    truth[0], truth[1] = first[0], first[12]  # what slots 0 and 1 of window 2 show
    s, t = 0.5, 0.2
    aligner = WindowAligner()
    out1 = aligner.push(first)
    out2 = aligner.push((truth - t) / s)
    tail = aligner.finish()
    assert out1.shape[0] == 24 and out2.shape[0] == 22 and tail.shape[0] == 8
    torch.testing.assert_close(out1, first[:24])
    w = torch.arange(8, dtype=torch.float32).view(-1, 1, 1) / 7
    torch.testing.assert_close(out2[:8], first[24:] * (1 - w) + truth[2:10] * w, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out2[8:], truth[10:24], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(tail, truth[24:], rtol=1e-5, atol=1e-5)
    assert aligner.scales[1] == pytest.approx((s, t), rel=1e-4)


def test_metric_aligner_does_not_rescale():
    first = torch.full((32, 2, 2), 2.0)
    aligner = WindowAligner(metric=True)
    aligner.push(first)
    out = aligner.push(torch.full((32, 2, 2), 5.0))
    torch.testing.assert_close(out[-1], torch.full((2, 2), 5.0))
    assert aligner.scales[1] == (1.0, 0.0)


# ---------------------------------------------------------------- the engine against the reference
def run_engine(model, frames, input_size=28, feature_cache=True):
    engine = WindowedDepth(model, input_size=input_size, feature_cache=feature_cache)
    depth = torch.cat(list(engine.run(iter(frames)))).numpy()
    return depth, engine.stats


@pytest.mark.parametrize("length", [1, 23, 50])
def test_engine_matches_reference_and_encodes_each_frame_once(tiny_model, length):
    frames = synthetic_frames(length, 48, 64, seed=length)
    expected = reference_depth(tiny_model, frames, 28)
    cached, stats = run_engine(tiny_model, frames)
    assert cached.shape == (length, 48, 64) and cached.dtype == np.float32
    assert rel_l2(cached, expected) <= 1e-4
    assert stats.frames == length and stats.encoded_frames == length
    uncached, stats_nc = run_engine(tiny_model, frames, feature_cache=False)
    assert stats_nc.encoded_frames == 32 * stats_nc.windows
    assert rel_l2(uncached, expected) <= 1e-4
    assert rel_l2(cached, uncached) <= 1e-5



LAST_WINDOW_LENGTHS = [1, 2, 3, 12, 21, 22, 23, 24, 25, 31, 32, 33, 43, 44, 45, 46, 53, 54, 55, 66, 67, 70, 88, 89]


def test_last_window_decodes_only_the_slots_the_output_uses(monkeypatch):
    """The last window's head runs for its used slots only (vda.depth.windows.used_slots), and the depth of every
    length is bit for bit what decoding all 32 slots gives (no_model: depth a function of each frame alone)."""
    from vda.bench.no_model import NoModel
    import vda.depth.engine as engine_module

    frames = list(synthetic_frames(max(LAST_WINDOW_LENGTHS), 28, 28, seed=4))
    for length in LAST_WINDOW_LENGTHS:
        seen = []
        model = NoModel()
        decode = model.decode
        model.decode = lambda *args, slots=None: seen.append(slots) or decode(*args, slots=slots)
        fewer = torch.cat(list(WindowedDepth(model, input_size=28).run(iter(frames[:length]))))
        with monkeypatch.context() as patch:
            patch.setattr(engine_module, "used_slots", lambda start, length: 32)
            every = torch.cat(list(WindowedDepth(NoModel(), input_size=28).run(iter(frames[:length]))))
        assert fewer.shape[0] == length and torch.equal(fewer, every), length
        last_start = window_starts(length)[-1]
        assert seen == [32] * (len(seen) - 1) + [max(2, length - last_start)], length


def test_engine_streams_before_reading_the_whole_video(tiny_model):
    consumed = []

    def frames():
        for index, frame in enumerate(synthetic_frames(80, 48, 64)):
            consumed.append(index)
            yield frame

    engine = WindowedDepth(tiny_model, input_size=28)
    chunks = engine.run(frames())
    first = next(chunks)
    assert first.shape[0] == 24 and len(consumed) == 32  # one window read, 24 maps already final
    sizes = [first.shape[0]] + [c.shape[0] for c in chunks]
    assert sum(sizes) == 80 and len(consumed) == 80


@pytest.mark.parametrize("metric", [False, True], ids=["relative", "metric"])
def test_saved_npz_matches_reference(
    tmp_path, metric, random_checkpoint, random_metric_checkpoint, tiny_model, tiny_metric_model
):
    model = tiny_metric_model if metric else tiny_model
    checkpoint = random_metric_checkpoint if metric else random_checkpoint
    video = write_video(tmp_path / "walk.mp4", synthetic_frames(50, 48, 64, seed=7), fps=24)
    cfg = compose_infer(infer_overrides(video, tmp_path / "out", checkpoint, f"model.metric={str(metric).lower()}"))
    result = run_composed(cfg)
    saved = np.load(tmp_path / "out" / "walk_depths.npz")
    expected = reference_depth(model, decode_all(video), 28)
    assert saved["depths"].dtype == np.float32 and saved["depths"].shape == (50, 48, 64)
    assert float(saved["fps"]) == 24.0
    assert rel_l2(saved["depths"], expected) <= 1e-4
    assert result.frames == 50 and result.stats.encoded_frames == 50


# ---------------------------------------------------------------- every output: count, shape, dtype, fps
def test_outputs_have_the_decoded_frames_shape_and_rate(tmp_path, random_checkpoint):
    rate = Fraction(30000, 1001)
    video = write_video(tmp_path / "clip.mp4", synthetic_frames(41, 48, 64), fps=rate)
    out = tmp_path / "out"
    cfg = compose_infer(
        infer_overrides(
            video,
            out,
            random_checkpoint,
            "infer.max_res=32",
            "infer.target_fps=15",
            "output.src=true",
            "output.png16=true",
        )
    )
    lived = since_process_start()
    result = run_composed(cfg)
    # the first depth maps came after this process had lived `lived` seconds, and before the run ended
    assert lived < result.extra["first_depth_s"] < since_process_start() - result.extra["after_model_s"]
    n, h, w, fps = 21, 24, 32, rate / 2  # stride 2 of 41 frames, 64x48 scaled to a long side of 32
    assert sorted(p.name for p in out.iterdir()) == [
        "clip_depths.npz",
        "clip_depths_png16",
        "clip_src.mp4",
        "clip_vis.mp4",
    ]
    assert sorted(p.name for p in result.outputs) == sorted(p.name for p in out.iterdir())
    saved = np.load(out / "clip_depths.npz")
    depths = saved["depths"]
    assert depths.shape == (n, h, w) and depths.dtype == np.float32
    assert float(saved["fps"]) == pytest.approx(float(fps), rel=1e-12)
    for name in ("clip_vis.mp4", "clip_src.mp4"):
        with av.open(str(out / name)) as container:
            stream = container.streams.video[0]
            assert stream.average_rate == fps
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == n and frames[0].shape == (h, w, 3)
    pngs = sorted((out / "clip_depths_png16").glob("*.png"))
    assert [p.name for p in pngs][:2] == ["000000.png", "000001.png"] and len(pngs) == n
    meta = json.loads((out / "clip_depths_png16" / "scale.json").read_text())
    with av.open(str(pngs[-1])) as container:
        png = next(container.decode(video=0)).to_ndarray(format="gray16le")
    assert png.shape == (h, w)
    np.testing.assert_allclose(png * meta["scale"], depths[-1], atol=meta["scale"])


def test_grayscale_preview(tmp_path, random_checkpoint):
    video = write_video(tmp_path / "g.mp4", synthetic_frames(5, 48, 64))
    run_composed(
        compose_infer(
            infer_overrides(video, tmp_path / "out", random_checkpoint, "output.grayscale=true", "output.npz=false")
        )
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["g_vis.mp4"]
    frames = decode_all(tmp_path / "out" / "g_vis.mp4")
    assert frames.shape == (5, 48, 64, 3)
    spread = np.abs(frames.astype(int) - frames.mean(axis=-1, keepdims=True)).max()
    assert spread <= 4  # grey: channels equal up to chroma subsampling noise


def test_failure_mid_run_leaves_no_output(tmp_path, random_checkpoint, monkeypatch):
    video = write_video(tmp_path / "f.mp4", synthetic_frames(40, 48, 64))
    calls = []
    from vda.model.video_depth_anything import VideoDepthAnything

    original = VideoDepthAnything.decode

    def failing_decode(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise NonFiniteOutputError("simulated overflow")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VideoDepthAnything, "decode", failing_decode)
    out = tmp_path / "out"
    with pytest.raises(NonFiniteOutputError):
        run_composed(
            compose_infer(infer_overrides(video, out, random_checkpoint, "output.src=true", "output.png16=true"))
        )
    assert not out.exists()  # the folder the run created is removed with what it staged


@pytest.mark.parametrize(
    "overrides, message",
    [
        ([], "no value given for input"),
        (["input=x.mp4", "infer.max_len=0"], "infer.max_len=0"),
        (["input=x.mp4", "infer.input_size=10"], "infer.input_size=10"),
        (["input=x.mp4", "infer.target_fps=0"], "infer.target_fps=0"),
        (["input=x.mp4", "output.npz=false", "output.vis=false"], "every output is switched off"),
        (["input=x.mp4", "output.preset=fastest"], "unknown libx264 preset output.preset='fastest'"),
    ],
)
def test_config_errors_are_caught_before_any_work(overrides, message):
    cfg = compose_infer(overrides)
    with pytest.raises(ConfigError, match=message):
        run_composed(cfg)


def test_unusable_mlflow_store_fails_before_any_frame_and_leaves_nothing(tmp_path, random_checkpoint, monkeypatch):
    """The store opens in the background while the model loads: it is checked before the first frame."""
    video = write_video(tmp_path / "m.mp4", synthetic_frames(2, 48, 64))
    overrides = infer_overrides(video, tmp_path / "out", random_checkpoint)
    overrides = [o for o in overrides if not o.startswith("mlflow.")] + ["mlflow.tracking_uri=nosuchscheme://store"]
    import vda.infer.single

    monkeypatch.setattr(vda.infer.single, "process_video", lambda *a, **kw: pytest.fail("video processed before the store was checked"))
    with pytest.raises(ConfigError, match="nosuchscheme://store"):
        run_composed(compose_infer(overrides))
    assert not (tmp_path / "out").exists()  # the output folder it created is gone again


def test_too_little_disk_space_fails_before_the_model_is_built(tmp_path, random_checkpoint, monkeypatch):
    import shutil
    from collections import namedtuple

    import vda.infer.single
    from vda.errors import OutputError

    video = write_video(tmp_path / "d.mp4", synthetic_frames(30, 48, 64))
    usage = namedtuple("usage", "total used free")
    # 30 maps of 48x64 float32 = 368,640 bytes; with the npz twice that
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 500_000, 500_000))
    monkeypatch.setattr(vda.infer.single, "assemble", lambda *a, **kw: pytest.fail("model built before the disk was checked"))
    out = tmp_path / "out"
    with pytest.raises(OutputError, match=r"need ~0\.0 GiB \(scratch file \+ npz \+ vis\).*output\.npz=false"):
        run_composed(compose_infer(infer_overrides(video, out, random_checkpoint)))
    assert not out.exists()  # refused before any work: not even the output folder is left
    # without the npz the scratch file alone fits
    monkeypatch.setattr(vda.infer.single, "assemble", lambda *a, **kw: pytest.fail("reached the model: disk check passed"))
    with pytest.raises(pytest.fail.Exception, match="disk check passed"):
        run_composed(compose_infer(infer_overrides(video, out, random_checkpoint, "output.npz=false")))


def test_graph_build_time_is_its_own_stage_not_the_encoders(tiny_model):
    """A graph runner builds its graphs inside its first encode; the stage split charges that to "build"."""
    from vda.backends import Runner

    class BuildsOnFirstCall(Runner):  # the real eager runner, plus a build like GraphRunner._graphs_for's
        def encode(self, frames, precision=None):
            if not self.build_s:
                start = time.perf_counter()
                time.sleep(0.3)
                self.build_s += time.perf_counter() - start
            return super().encode(frames, precision)

    runner = BuildsOnFirstCall(tiny_model)
    engine = WindowedDepth(runner, input_size=28)
    depth = torch.cat(list(engine.run(iter(synthetic_frames(40, 48, 64)))))
    expected = torch.cat(list(WindowedDepth(tiny_model, input_size=28).run(iter(synthetic_frames(40, 48, 64)))))
    torch.testing.assert_close(depth, expected)
    assert engine.times.seconds["build"] == pytest.approx(runner.build_s) and runner.build_s >= 0.3
    assert engine.times.calls["build"] == 1 and engine.times.calls["encoder"] == 2
