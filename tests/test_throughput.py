"""I/O off the model's path: pipelined vs sequential runs, failures in every thread, stub model, writers."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import threading
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import Optional

import av
import numpy as np
import pytest
import torch
from conftest import decode_all
from tqdm._monitor import TMonitor

from vda.errors import ConfigError, NonFiniteOutputError, OutputError, VideoError
from vda.depth import WindowedDepth
from vda.outputs.writers import DepthStore, write_png16
from vda.depth.settings import InferSettings
from vda.outputs.formats import OutputConfig
from vda.depth.process import process_video
from vda.bench.no_model import NoModel
from vda.runtime.threads import BackgroundWriter, Prefetcher
from vda.runtime.transfer import HostCopy, uses_pinned_copy
from vda.video.reader import VideoReader, probe
from vda.video.synthetic import synthetic_frames, write_video
from vda.video.writer import Colorizer, VideoWriter, colorize, encode_png16, inferno_lut


def run(model, info, out: Path, pipelined: bool = True, **output):
    """process_video at input size 28 with the outputs given (npz and vis by default, no progress bars)."""
    values = {"npz": True, "vis": True, "progress": False, **output}
    return process_video(model, info, out, InferSettings(input_size=28, pipelined=pipelined), OutputConfig(**values))


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_video(tmp_path / "clip.mp4", synthetic_frames(41, 48, 64, seed=3), fps=24)


def npz_bytes(path: Path) -> tuple[int, list[tuple[str, int, bytes]]]:
    """File size and (name, stored size, raw bytes) of each member: all of an npz but the zip timestamps."""
    with zipfile.ZipFile(path) as archive:
        members = [(i.filename, i.compress_size, archive.read(i)) for i in archive.infolist()]
    return path.stat().st_size, members


def video_rate(path: Path) -> Fraction:
    with av.open(str(path)) as container:
        return container.streams.video[0].average_rate


def live_threads() -> set[threading.Thread]:
    """Every live thread but tqdm's process-wide monitor (tqdm starts it for any bar, disabled ones too)."""
    return {thread for thread in threading.enumerate() if not isinstance(thread, TMonitor)}


# ---------------------------------------------------------------- pipelined == sequential, byte for byte
def test_pipelined_run_writes_the_same_bytes_as_a_sequential_run(tmp_path, clip, tiny_model):
    info = probe(clip)
    before = live_threads()
    results = {}
    for pipelined in (False, True):
        out = tmp_path / f"out-{pipelined}"
        out.mkdir()
        results[pipelined] = run(tiny_model, info, out, pipelined, src=True, png16=True)
    assert live_threads() == before
    seq, pipe = tmp_path / "out-False", tmp_path / "out-True"
    assert sorted(p.name for p in pipe.iterdir()) == sorted(p.name for p in seq.iterdir())
    assert npz_bytes(pipe / "clip_depths.npz") == npz_bytes(seq / "clip_depths.npz")
    for name in ("clip_vis.mp4", "clip_src.mp4"):
        # libx264 output is not bit-reproducible run to run here (already so before the pipelined run):
        # same frames, size and rate, pixels equal up to encoder noise
        a, b = decode_all(pipe / name), decode_all(seq / name)
        assert a.shape == b.shape == (41, 48, 64, 3) and video_rate(pipe / name) == video_rate(seq / name) == 24
        assert np.abs(a.astype(int) - b).mean() < 1.0
    pngs = sorted(p.name for p in (seq / "clip_depths_png16").iterdir())
    assert len(pngs) == 42  # 41 frames + scale.json
    for name in pngs:
        assert (pipe / "clip_depths_png16" / name).read_bytes() == (seq / "clip_depths_png16" / name).read_bytes()
    assert results[True].frames == results[False].frames == 41
    assert results[True].stats.encoded_frames == 41


def old_write_npz(store: DepthStore, path: Path, fps: Fraction) -> None:
    """The npz assembly before the pipelined run (copyfileobj), kept here as the reference of the bytes."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (store.count, store.height, store.width)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("depths.npy", "w", force_zip64=True) as entry, open(store.path, "rb") as raw:
            np.lib.format.write_array_header_1_0(entry, header)
            shutil.copyfileobj(raw, entry, 16 << 20)
        fps_bytes = io.BytesIO()
        np.save(fps_bytes, np.float64(fps))
        archive.writestr("fps.npy", fps_bytes.getvalue())


def filled_store(path: Path, frames: int, height: int, width: int, seed: int = 0) -> tuple[DepthStore, np.ndarray]:
    depth = np.random.default_rng(seed).uniform(0.5, 40.0, (frames, height, width)).astype(np.float32)
    store = DepthStore(path, height, width)
    store.append(depth[:5])
    store.append(depth[5:])
    store.close()
    return store, depth


def test_npz_bytes_are_those_of_the_previous_assembly(tmp_path):
    store, depth = filled_store(tmp_path / "scratch.f32", 21, 24, 30)
    seen = []
    store.write_npz(tmp_path / "new.npz", Fraction(30000, 1001), seen.append)
    old_write_npz(store, tmp_path / "old.npz", Fraction(30000, 1001))
    assert npz_bytes(tmp_path / "new.npz") == npz_bytes(tmp_path / "old.npz")
    assert sum(seen) == depth.nbytes
    np.testing.assert_array_equal(np.load(tmp_path / "new.npz")["depths"], depth)


# ---------------------------------------------------------------- failures in each thread
class FailingStub(NoModel):
    """Raises NonFiniteOutputError in the second window's decode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def decode(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 2:
            raise NonFiniteOutputError("simulated overflow")
        return super().decode(*args, **kwargs)


def fail_decoding(monkeypatch):
    original = VideoReader._to_rgb
    count = itertools.count()

    def to_rgb(self, frame):
        if next(count) == 30:
            raise VideoError("simulated decode failure")
        return original(self, frame)

    monkeypatch.setattr(VideoReader, "_to_rgb", to_rgb)
    return VideoError


def fail_writing(monkeypatch):
    original = DepthStore.append

    def append(self, maps):
        if self.count > 0:
            raise OutputError("simulated disk full")
        original(self, maps)

    monkeypatch.setattr(DepthStore, "append", append)
    return OutputError


def fail_source_copy(monkeypatch):
    original = VideoWriter.write

    def write(self, frame):
        if self.count == 10 and "_src." in self.path.name:
            raise OutputError("simulated encoder failure")
        original(self, frame)

    monkeypatch.setattr(VideoWriter, "write", write)
    return OutputError


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sequential"])
@pytest.mark.parametrize("where", ["decode", "write", "source-copy", "model"])
def test_a_failure_anywhere_ends_the_run_cleanly(tmp_path, clip, monkeypatch, where, pipelined):
    model = FailingStub() if where == "model" else NoModel()
    error = {
        "decode": fail_decoding,
        "write": fail_writing,
        "source-copy": fail_source_copy,
        "model": lambda _: NonFiniteOutputError,
    }[where](monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    before = live_threads()
    with pytest.raises(error, match="simulated"):
        run(model, probe(clip), out, pipelined, src=True, png16=True)
    assert list(out.iterdir()) == []
    assert live_threads() == before


# ---------------------------------------------------------------- the thread helpers on their own
def test_prefetcher_stops_its_producer_when_the_consumer_leaves_early():
    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    before = live_threads()
    with Prefetcher(endless(), maxsize=3) as items:
        assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert closed.is_set() and live_threads() == before


def test_prefetcher_reraises_the_producer_error_after_the_items_before_it():
    def failing():
        yield 1
        yield 2
        raise VideoError("broken packet")

    with Prefetcher(failing(), maxsize=1) as items:
        assert next(items) == 1 and next(items) == 2
        with pytest.raises(VideoError, match="broken packet"):
            next(items)
        with pytest.raises(StopIteration):
            next(items)


def test_background_writer_keeps_order_and_raises_the_first_error():
    done: list[int] = []

    def write(value: int) -> None:
        if value == 3:
            raise OutputError("no space left")
        done.append(value)

    before = live_threads()
    writer = BackgroundWriter(maxsize=2)
    with pytest.raises(OutputError, match="no space left"):
        for value in range(100):
            writer.submit(write, value)
        writer.close()
    writer.abort()
    assert done == [0, 1, 2] and live_threads() == before
    with pytest.raises(RuntimeError):
        writer.submit(write, 0)


# ---------------------------------------------------------------- stub model
def test_no_model_gives_one_map_per_frame_at_the_frame_size(tmp_path, clip):
    model = NoModel()
    frames = list(VideoReader(probe(clip)))
    maps = torch.cat(list(WindowedDepth(model, input_size=28).run(iter(frames))))
    assert maps.shape == (41, 48, 64) and maps.dtype == torch.float32
    assert bool((maps >= 0).all()) and float(maps.std()) > 0
    (tmp_path / "out").mkdir()
    result = run(model, probe(clip), tmp_path / "out", src=True)
    assert result.frames == 41
    assert np.load(tmp_path / "out" / "clip_depths.npz")["depths"].shape == (41, 48, 64)
    for name in ("clip_vis.mp4", "clip_src.mp4"):
        assert decode_all(tmp_path / "out" / name).shape == (41, 48, 64, 3)


def test_second_pass_reports_progress_when_asked(tmp_path, clip, capsys):
    (tmp_path / "out").mkdir()
    run(NoModel(), probe(clip), tmp_path / "out", progress=True, png16=True)
    err = capsys.readouterr().err
    assert all(f"clip {part}" in err for part in ("npz", "preview", "png16"))


# ---------------------------------------------------------------- preview colours
def old_colorize(depth: np.ndarray, d_min: float, d_max: float, lut: Optional[np.ndarray]) -> np.ndarray:
    """The colour mapping before this change, kept as the reference."""
    span = d_max - d_min
    scale = 255.0 / span if span > 0 else 0.0
    index = np.clip((depth - d_min) * scale, 0, 255).astype(np.uint8)
    if lut is None:
        return np.repeat(index[..., None], 3, axis=-1)
    return lut[index]


@pytest.mark.parametrize("lut", [inferno_lut(), None], ids=["inferno", "grey"])
@pytest.mark.parametrize("shape", [(3, 24, 32), (2, 25, 33), (20, 18)])
def test_colorize_equals_the_previous_implementation(lut, shape):
    depth = np.random.default_rng(1).uniform(-2.0, 60.0, shape).astype(np.float32)
    d_min, d_max = 0.25, float(depth.max()) - 3.0  # values outside the range are clipped
    np.testing.assert_array_equal(colorize(depth, d_min, d_max, lut), old_colorize(depth, d_min, d_max, lut))
    flat = np.full(shape, 7.0, np.float32)
    np.testing.assert_array_equal(colorize(flat, 7.0, 7.0, lut), old_colorize(flat, 7.0, 7.0, lut))


def test_colorizer_reuses_its_output_buffer():
    depth = np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32)
    colorizer = Colorizer(0.0, 1.0, inferno_lut())
    out = np.zeros((24, 32, 3), np.uint8)
    assert colorizer(depth, out) is out
    np.testing.assert_array_equal(out, old_colorize(depth, 0.0, 1.0, inferno_lut()))


# ---------------------------------------------------------------- video writer preset
def x264_settings(path: Path) -> bytes:
    return path.read_bytes().split(b"x264 - core", 1)[1][:2000]


def test_video_writer_passes_the_preset_to_libx264(tmp_path):
    frames = synthetic_frames(4, 32, 48)
    for preset in ("veryfast", "medium"):
        with VideoWriter(tmp_path / f"{preset}.mp4", 48, 32, Fraction(24), preset=preset) as writer:
            for frame in frames:
                writer.write(frame)
    assert b"subme=2" in x264_settings(tmp_path / "veryfast.mp4")  # veryfast's subpixel refinement
    assert b"subme=7" in x264_settings(tmp_path / "medium.mp4")
    with pytest.raises(ConfigError, match="turbo"):
        VideoWriter(tmp_path / "x.mp4", 48, 32, Fraction(24), preset="turbo")


# ---------------------------------------------------------------- png16
def read_png16(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="gray16le")


def test_png16_values_round_trip_exactly(tmp_path):
    image = np.random.default_rng(2).integers(0, 65536, (17, 23), dtype=np.uint16)
    image[0, :2] = (0, 65535)
    (tmp_path / "one.png").write_bytes(encode_png16(image))
    np.testing.assert_array_equal(read_png16(tmp_path / "one.png"), image)

    store, depth = filled_store(tmp_path / "scratch.f32", 37, 20, 26, seed=4)
    scale = write_png16(store, tmp_path / "pngs", "metres", workers=3)
    meta = json.loads((tmp_path / "pngs" / "scale.json").read_text())
    assert meta["frames"] == 37 and meta["scale"] == scale == store.max / 65535
    expected = np.clip(np.rint(depth / scale), 0, 65535).astype(np.uint16)
    for index in range(37):
        np.testing.assert_array_equal(read_png16(tmp_path / "pngs" / f"{index:06d}.png"), expected[index])


# ---------------------------------------------------------------- device -> host copies
@pytest.mark.parametrize("device, pinned", [("cuda", True), ("cuda:1", True), ("mps", False), ("cpu", False)])
def test_only_cuda_copies_through_pinned_memory(device, pinned):
    assert uses_pinned_copy(torch.device(device)) is pinned


def test_plain_host_copy_returns_the_values():
    depth = torch.rand(3, 5, 7)
    copy = HostCopy(torch.device("cpu"))
    assert not copy.pinned
    np.testing.assert_array_equal(copy.start(depth).wait(), depth.numpy())
