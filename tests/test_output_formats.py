"""The output formats beyond npz/vis/src/png16: EXR, PLY, the 16-bit depth video; running preview range;
the checks every output goes through (optional packages, metric-only formats, free disk); flat memory."""

from __future__ import annotations

import json
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from plyfile import PlyData
from test_pipeline import compose_infer, infer_overrides, run_composed

import vda
from vda.errors import ConfigError, OutputError
from vda.outputs import depth_video
from vda.outputs.normalize import RunningRange
from vda.bench.no_model import NoModel
from vda.depth.process import process_video
from vda.depth.settings import InferSettings
from vda.outputs import formats, writers
from vda.outputs.formats import OUTPUTS, OutputConfig, output_bytes_per_frame
from vda.outputs.writers import DepthStore, check_disk_space
from vda.video.reader import probe
from vda.video.synthetic import synthetic_clip, synthetic_frames, write_video
from conftest import decode_all

NONE = {name: False for name in OUTPUTS.names()}


def run(model, video: Path, out: Path, stream: bool = False, **output) -> object:
    out.mkdir(exist_ok=True)
    options = OutputConfig(**{**NONE, "progress": False, **output})
    return process_video(model, probe(video), out, InferSettings(input_size=28), options, stream=stream)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", synthetic_frames(30, 48, 64, seed=4), fps=24)


@pytest.fixture(scope="module")
def metric_run(tmp_path_factory, clip, tiny_metric_model):
    """One metric run writing the npz, EXR, PLY (stride 2, other focal lengths) and the depth video."""
    out = tmp_path_factory.mktemp("metric")
    result = run(
        tiny_metric_model, clip, out, npz=True, exr=True, ply=True, depth_video=True,
        ply_stride=2, focal_length_x=300.0, focal_length_y=200.0,
    )
    return out, result, np.load(out / "clip_depths.npz")["depths"]


def test_every_output_writes_what_its_record_names(metric_run):
    out, result, _ = metric_run
    assert sorted(p.name for p in result.outputs) == sorted(
        ["clip_depths.npz", "clip_depths_exr", "clip_ply", "clip_depth16.mkv", "clip_depth16.json"]
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in result.outputs)  # nothing staged left


def test_exr_holds_each_map_as_float32_channel_z(metric_run):
    out, _, depths = metric_run
    files = sorted((out / "clip_depths_exr").iterdir())
    assert [f.name for f in files] == [f"frame_{i:05d}.exr" for i in range(30)]
    for index in (0, 17, 29):
        with OpenEXR.File(str(files[index])) as image:
            channels = image.channels()
            assert list(channels) == ["Z"]
            z = channels["Z"].pixels
        assert z.dtype == np.float32 and z.shape == (48, 64)
        np.testing.assert_array_equal(z, depths[index])


def test_ply_points_follow_the_pinhole_formula_with_the_frame_colours(metric_run, clip):
    out, _, depths = metric_run
    files = sorted((out / "clip_ply").iterdir())
    assert [f.name for f in files] == [f"point{i:04d}.ply" for i in range(30)]
    frames = decode_all(clip)
    for index in (0, 29):
        ply = PlyData.read(str(files[index]))
        assert ply.text is False
        vertex = ply["vertex"]
        v, u = np.mgrid[0:48:2, 0:64:2]
        z = depths[index][::2, ::2]
        assert vertex.count == z.size == 24 * 32
        np.testing.assert_allclose(vertex["z"], z.ravel())
        np.testing.assert_allclose(vertex["x"], ((u - 32) / 300.0 * z).ravel(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vertex["y"], ((v - 24) / 200.0 * z).ravel(), rtol=1e-5, atol=1e-6)
        colours = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=-1)
        np.testing.assert_array_equal(colours, frames[index][::2, ::2].reshape(-1, 3))


def test_depth_video_round_trip_is_within_one_16_bit_step(metric_run):
    out, _, depths = metric_run
    back = vda.read_depth_video(out / "clip_depth16.mkv")
    assert back.dtype == np.float32 and back.shape == depths.shape
    step = (depths.max() - depths.min()) / 65535
    assert np.abs(back - depths).max() <= step
    meta = json.loads((out / "clip_depth16.json").read_text())
    assert (meta["min"], meta["max"]) == (float(depths.min()), float(depths.max()))
    assert meta["frames"] == 30 and meta["range"] == "global" and meta["unit"] == "metres"


def test_depth_video_range_in_the_container_alone_is_enough(metric_run, tmp_path):
    out, _, depths = metric_run
    alone = tmp_path / "moved.mkv"
    alone.write_bytes((out / "clip_depth16.mkv").read_bytes())  # no sidecar beside it
    np.testing.assert_array_equal(vda.read_depth_video(alone), vda.read_depth_video(out / "clip_depth16.mkv"))


def test_depth_video_is_smaller_than_the_npz(tmp_path, tiny_model):
    """The size ratio on a 320x240 test clip (random weights: smooth depth, as real depth is)."""
    video = synthetic_clip(tmp_path / "s.mp4", 30, 240, 320)
    result = run(tiny_model, video, tmp_path / "out", npz=True, depth_video=True)
    npz = (tmp_path / "out" / "s_depths.npz").stat().st_size
    mkv = (tmp_path / "out" / "s_depth16.mkv").stat().st_size
    print(f"depth video {mkv} B vs npz {npz} B: {npz / mkv:.1f}x smaller")
    assert mkv < npz / 2  # 16 bits instead of 32 before any compression
    assert len(result.outputs) == 3


def test_stream_depth_video_fixes_its_range_from_the_first_frames_and_clips(tmp_path, monkeypatch):
    """The stream rule: range from the warm-up frames widened by the margin; later values outside it clipped."""
    monkeypatch.setattr(depth_video, "STREAM_WARMUP_FRAMES", 4)
    values = [1.0, 2.0, 1.5, 1.2] + [1.4, 9.0, 0.1]  # warm-up span 1..2, margin 0.5 -> range 0.5..2.5
    context = depth_video.OutputContext(probe(write_video(tmp_path / "v.mp4", synthetic_frames(1, 8, 8))), None, True, stream=True)
    writer = depth_video.DepthVideoWriter(tmp_path / "d.mkv", context, tmp_path / "d.json")
    assert writer.live
    for value in values:
        writer.add_depth(np.full((1, 8, 8), value, np.float32))

    class Store:
        height, width = 8, 8

    writer.finish(Store(), lambda n: None)
    back = vda.read_depth_video(tmp_path / "d.mkv")[:, 0, 0]
    np.testing.assert_allclose(back, [1.0, 2.0, 1.5, 1.2, 1.4, 2.5, 0.5], atol=2.0 / 65535)
    meta = json.loads((tmp_path / "d.json").read_text())
    assert (meta["min"], meta["max"]) == (0.5, 2.5) and meta["clipped_fraction"] == pytest.approx(2 / 7)


def test_stream_run_writes_the_depth_video_as_the_depth_comes(tmp_path, clip, monkeypatch):
    seen = {}
    original = depth_video.DepthVideoWriter.finish

    def finish(self, store, on_progress):
        seen["encoded"] = self.frames
        original(self, store, on_progress)

    monkeypatch.setattr(depth_video.DepthVideoWriter, "finish", finish)
    out = tmp_path / "out"
    run(NoModel(), clip, out, stream=True, npz=True, depth_video=True)
    assert seen["encoded"] == 30  # every frame encoded before the second pass
    meta = json.loads((out / "clip_depth16.json").read_text())
    assert meta["range"].startswith(f"first {depth_video.STREAM_WARMUP_FRAMES} frames")
    depths = np.load(out / "clip_depths.npz")["depths"]
    expected = np.clip(depths, meta["min"], meta["max"])
    step = (meta["max"] - meta["min"]) / 65535
    assert np.abs(vda.read_depth_video(out / "clip_depth16.mkv") - expected).max() <= step


def test_running_range_follows_an_ema_of_the_percentiles():
    rng = RunningRange(span=3)  # weight 0.5
    ramp = np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    assert rng.update(ramp) == pytest.approx((0.02, 0.98), abs=1e-4)
    assert rng.update(ramp * 3) == pytest.approx(((0.02 + 0.06) / 2, (0.98 + 2.94) / 2), abs=1e-4)


@pytest.mark.parametrize("mode", ["global", "running"])
def test_running_preview_follows_the_depth_as_it_comes(tmp_path, mode):
    """Depth whose range moves up halfway: the global preview brightens the second half, the running one
    settles back to the same grey within a few frames, and is written as the depth comes."""
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    maps = np.stack([ramp] * 15 + [ramp + 1] * 15)
    video = write_video(tmp_path / "v.mp4", synthetic_frames(1, 48, 64))
    options = OutputConfig(**{**NONE, "vis": True, "grayscale": True, "vis_normalize": mode, "vis_span": 4})
    writer = formats.PreviewWriter(tmp_path / "p.mp4", formats.OutputContext(probe(video), options, False))
    assert writer.live == (mode == "running")
    store = DepthStore(tmp_path / "scratch.f32", 48, 64)
    for depth in maps:
        store.append(depth[None])
        if writer.live:
            writer.add_depth(depth[None])
    store.close()
    writer.finish(store, lambda n: None)
    grey = decode_all(tmp_path / "p.mp4").reshape(30, -1).mean(axis=1)
    first, second = grey[5:15].mean(), grey[24:].mean()
    if mode == "global":
        assert second - first > 100
    else:
        assert abs(second - first) < 5
        assert grey[15] > grey[16] > grey[18] > grey[20]  # eased back over a few frames, not at once


# ---------------------------------------------------------------- checks before any work
def test_ply_with_a_relative_model_is_refused_in_one_line_before_any_work(tmp_path, random_checkpoint, monkeypatch):
    import vda.infer.single

    video = write_video(tmp_path / "p.mp4", synthetic_frames(2, 48, 64))
    monkeypatch.setattr(vda.infer.single, "assemble", lambda *a, **kw: pytest.fail("model built"))
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="output.ply=true needs metric depth") as caught:
        run_composed(compose_infer(infer_overrides(video, out, random_checkpoint, "output.ply=true")))
    assert "\n" not in str(caught.value)
    assert not out.exists() or list(out.iterdir()) == []


def test_process_video_refuses_ply_for_relative_depth_before_reading(tmp_path, clip, tiny_model):
    with pytest.raises(ConfigError, match="needs metric depth"):
        run(tiny_model, clip, tmp_path / "out", ply=True)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("name, module, extra", [("exr", "OpenEXR", "exr"), ("ply", "plyfile", "ply")])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, random_metric_checkpoint, monkeypatch, name, module, extra):
    import vda.infer.single

    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.setattr(vda.infer.single, "assemble", lambda *a, **kw: pytest.fail("model built"))
    video = write_video(tmp_path / "x.mp4", synthetic_frames(2, 48, 64))
    overrides = infer_overrides(video, tmp_path / "out", random_metric_checkpoint, "model.metric=true", f"output.{name}=true")
    with pytest.raises(ConfigError) as caught:
        run_composed(compose_infer(overrides))
    assert str(caught.value) == f"output.{name}=true needs the {module} package: pip install 'vda[{extra}]'"


@pytest.mark.parametrize(
    "override, message",
    [
        ("output.vis_normalize=median", "output.vis_normalize='median' is not one of global, running"),
        ("output.vis_span=0", "output.vis_span=0"),
        ("infer.scene_threshold=1.5", "infer.scene_threshold=1.5 is outside"),
    ],
)
def test_new_options_are_checked_before_any_work(tmp_path, random_checkpoint, override, message):
    video = write_video(tmp_path / "o.mp4", synthetic_frames(2, 48, 64))
    with pytest.raises(ConfigError, match=message):
        run_composed(compose_infer(infer_overrides(video, tmp_path / "out", random_checkpoint, override)))


def test_free_disk_check_counts_every_enabled_output(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    frames, h, w = 100, 720, 1280
    scratch = frames * h * w * 4
    options = OutputConfig(npz=False, vis=True)
    small = output_bytes_per_frame(options, h, w)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, scratch + frames * sum(small.values()) + 1))
    check_disk_space(tmp_path, frames, h, w, small)  # the preview fits
    for name in ("exr", "depth_video", "png16", "src"):
        more = output_bytes_per_frame(OutputConfig(npz=False, vis=True, **{name: True}), h, w)
        assert more[name] > 0
        with pytest.raises(OutputError, match=rf"scratch file \+ vis \+ {name}\)"):
            check_disk_space(tmp_path, frames, h, w, more)
    ply = output_bytes_per_frame(OutputConfig(npz=False, vis=False, ply=True, ply_stride=2), h, w)["ply"]
    assert ply == output_bytes_per_frame(OutputConfig(npz=False, vis=False, ply=True), h, w)["ply"] // 4


# ---------------------------------------------------------------- memory
def peak_traced_mb(model, video: Path, out: Path) -> float:
    tracemalloc.start()
    try:
        run(
            model, video, out, npz=True, vis=True, src=True, png16=True, exr=True, ply=True, depth_video=True,
            vis_normalize="running",
        )
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_in_video_length_with_every_output_on(tmp_path, monkeypatch):
    """Python/numpy allocations (what a writer holding maps or frames would grow) of a 40- and a 160-frame run,
    after a warm-up run (one-time allocations: colour tables, imports). The npz copy reads the scratch file in
    blocks of COPY_CHUNK_BYTES (16 MiB: more than the whole depth of these clips), lowered here so that both
    runs exceed it."""
    monkeypatch.setattr(writers, "COPY_CHUNK_BYTES", 1 << 18)
    model = NoModel(metric=True)
    short = synthetic_clip(tmp_path / "short.mp4", 40, 96, 128)
    long = synthetic_clip(tmp_path / "long.mp4", 160, 96, 128)
    peak_traced_mb(model, short, tmp_path / "warm-up")
    peak_short = peak_traced_mb(model, short, tmp_path / "a")
    peak_long = peak_traced_mb(model, long, tmp_path / "b")
    grown = 120 * 96 * 128 * (4 + 3) / 2**20  # what 120 more frames of depth and colour would add
    assert peak_long < peak_short + 0.25 * grown, (peak_short, peak_long)
