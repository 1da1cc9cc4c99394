"""Damaged, cut-short, rotated and unusual videos; interruption; full disks; existing results (issue 8)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from vda.video.synthetic import synthetic_frames

from vda.errors import OutputError, VideoError
from vda.depth import WindowedDepth
from vda.outputs.writers import check_existing
from vda.video.reader import DecodeTally, VideoReader, probe

ROOT = Path(__file__).resolve().parents[1]
COUNT = 40


def encode(path: Path, frames: np.ndarray, codec="libx264", pix_fmt="yuv420p", rotation=0, pts=None, options=None):
    """Write RGB frames with PyAV: any codec/pixel format, a display rotation, explicit pts in milliseconds."""
    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=24)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if pts is not None:
            stream.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format=pix_fmt)
            frame.pts = index if pts is None else pts[index]
            if pts is not None:
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def read(path: Path):
    reader = VideoReader(probe(path, max_res=-1))
    return np.stack(list(reader)), reader


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """40 frames, index (moov) at the front as phones and web downloads have it."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return encode(path, synthetic_frames(COUNT, 48, 64), options={"movflags": "faststart"})


# ---------------------------------------------------------------- damaged and cut-short files
def test_zeroed_run_in_the_middle_keeps_decoding_and_counts_the_loss(clip, tmp_path, caplog):
    data = clip.read_bytes()
    middle = len(data) // 2
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:middle] + bytes(300) + data[middle + 300 :])
    with caplog.at_level(logging.WARNING, logger="vda.video.reader"):
        frames, reader = read(damaged)
    assert 0 < len(frames) < COUNT and reader.frames_skipped == COUNT - len(frames)
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"{reader.frames_skipped} frame(s) could not be decoded" in line and "\n" not in line


@pytest.mark.parametrize("kept", [0.5, 0.6, 0.8])
@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_file_cut_short_gives_the_frames_it_holds(tmp_path, container, kept, caplog):
    """The cut falls anywhere, also between a P-frame and the B-frames shown before it (lost with the cut)."""
    options = {"movflags": "faststart"} if container == "mp4" else {}
    whole = encode(tmp_path / f"whole.{container}", synthetic_frames(COUNT, 48, 64), options=options)
    cut = tmp_path / f"cut.{container}"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * kept)])
    with caplog.at_level(logging.WARNING, logger="vda.video.reader"):
        frames, reader = read(cut)
    assert 0 < len(frames) < COUNT
    assert reader.frames_skipped == COUNT - len(frames)
    assert "file cut short" in caplog.records[-1].getMessage()


def test_a_stream_whose_counted_frames_all_decoded_lost_none_whatever_its_timestamps_say():
    # a real case: 70 frames, all decoded, every timestamp 0 and a duration of 70 frames -> the end "missing"
    tally = DecodeTally(declared=70, packets=70, frames=70, rate=1050.0, end_time=70 / 1050, first_time=0.0, last_time=0.0)
    assert tally.missing_tail == 69 and tally.frames_lost == 0 and not tally.truncated
    tally.frames = 60  # ten of the counted frames did not decode: lost (timestamps may make it look like more)
    assert tally.frames_lost >= 10 and tally.truncated


def single_threaded_count(path: Path) -> int:
    """Frames an error-skipping decode without frame threads gets (independent of vda.video)."""
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        for packet in container.demux(stream):
            try:
                count += len(packet.decode())
            except av.error.FFmpegError:
                pass
    return count


def test_damage_loses_no_frame_a_decoder_without_frame_threads_gets(clip, tmp_path):
    # frame threading drops the good frames in flight when a packet fails or the data ends early; cut the file
    # at 30 points between its header and its end (a cut inside the header holds no frame and is a VideoError)
    data = clip.read_bytes()
    checked = []
    for cut in np.linspace(len(data) * 0.45, len(data) - 1, 30).astype(int):
        path = tmp_path / f"cut{cut}.mp4"
        path.write_bytes(data[:cut])
        expected = single_threaded_count(path)
        if expected == 0:
            with pytest.raises(VideoError):
                read(path)
            continue
        frames, reader = read(path)
        assert len(frames) == expected, cut
        assert reader.frames_skipped == COUNT - expected
        checked.append(expected)
    assert len(checked) >= 25 and len(set(checked)) >= 15, checked  # cuts at many different frames were checked


def test_clean_files_report_no_loss(clip, caplog):
    with caplog.at_level(logging.WARNING, logger="vda.video.reader"):
        frames, reader = read(clip)
    assert len(frames) == COUNT and reader.frames_skipped == 0 and not caplog.records


def test_nothing_decodable_is_one_video_error(clip, tmp_path):
    header_only = tmp_path / "header.mp4"
    header_only.write_bytes(clip.read_bytes()[:1200])
    with pytest.raises(VideoError, match="header.mp4") as info:
        read(header_only)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- rotation, bit depth, grayscale, odd sizes, VFR
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_video_is_read_as_displayed(tmp_path, rotation):
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    frames[:, :12, :16] = 255  # a white block in the stored top-left corner
    frames_read, reader = read(encode(tmp_path / "rot.mp4", frames, rotation=rotation))
    expected = np.rot90(frames[0], k=rotation // 90)  # rotation is counter-clockwise
    assert reader.info.rotation == rotation
    assert frames_read.shape[1:3] == expected.shape[:2] == (reader.info.height, reader.info.width)
    corner = [(expected[:, :, 0] > 128).nonzero()[i].mean() for i in (0, 1)]
    seen = [(frames_read[0, :, :, 0] > 128).nonzero()[i].mean() for i in (0, 1)]
    assert np.allclose(seen, corner, atol=1.5)


@pytest.mark.parametrize(
    "codec, pix_fmt, height, width, container",
    [
        ("libx264", "yuv420p10le", 48, 64, "mp4"),  # 10-bit
        ("ffv1", "gray", 48, 64, "mkv"),  # grayscale
        ("libx264", "yuv444p", 47, 63, "mp4"),  # odd sides
        ("ffv1", "gray10le", 47, 63, "mkv"),  # all three
    ],
)
def test_unusual_formats_give_rgb_frames_and_one_map_each(
    tmp_path, tiny_model, codec, pix_fmt, height, width, container
):
    source = synthetic_frames(5, height, width)
    frames, reader = read(encode(tmp_path / f"f.{container}", source, codec, pix_fmt))
    assert frames.shape == (5, height, width, 3) and frames.dtype == np.uint8
    if pix_fmt.startswith("gray"):  # equal channels close to the luma of the source
        luma = source @ np.array([0.299, 0.587, 0.114])
        assert np.array_equal(frames[..., 0], frames[..., 2])
        assert np.abs(frames[..., 1] - luma).mean() < 12
    else:
        assert np.abs(frames.astype(float) - source).mean() < 12
    depth = torch.cat(list(WindowedDepth(tiny_model, input_size=28).run(iter(frames))))
    assert depth.shape == (5, height, width) and torch.isfinite(depth).all()


def test_variable_frame_rate_gives_one_frame_each_at_the_average_rate(tmp_path):
    steps = np.tile([20, 60, 40], 10)  # ms between frames: 30 frames over 1.2 s
    pts = np.concatenate([[0], np.cumsum(steps)[:-1]])
    path = encode(tmp_path / "vfr.mkv", synthetic_frames(30, 48, 64), pts=pts.tolist())
    frames, reader = read(path)
    assert len(frames) == 30 and reader.frames_skipped == 0
    assert float(reader.info.fps) == pytest.approx(30 / 1.2, rel=0.1)


# ---------------------------------------------------------------- signals
CHILD_SIGNAL = """
import signal, sys, time
from vda.runtime.signals import Interrupted, interruptible
try:
    with interruptible():
        print("ready", flush=True)
        time.sleep(30)
except Interrupted as exc:
    print("cleaned", exc, flush=True)
    restored = (signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    print("restored" if restored else "not restored", flush=True)
    sys.exit(exc.exit_status)
"""


def default_signals() -> None:
    """In the child before it starts Python: the default dispositions, whatever this process inherited (a shell's
    background job, a CI runner or a pytest-xdist worker may ignore SIGINT, and an ignored SIGINT is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_becomes_a_typed_exception_with_its_exit_status(signum, status):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SIGNAL], cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=default_signals
    )
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signum)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == status
    assert f"cleaned interrupted by {signal.Signals(signum).name}" in out and "restored" in out.split("\n")[1]
    assert "not restored" not in out


# ---------------------------------------------------------------- existing results, full disks
def test_existing_result_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "clip_depths.npz").write_bytes(b"old")
    names = ["clip_depths.npz", "clip_vis.mp4"]
    with pytest.raises(OutputError, match=r"clip_depths\.npz already exists.*output\.overwrite=true"):
        check_existing(tmp_path, names, overwrite=False)
    check_existing(tmp_path, names, overwrite=True)
    check_existing(tmp_path, ["other_depths.npz"], overwrite=False)
    assert (tmp_path / "clip_depths.npz").read_bytes() == b"old"


CHILD_FSIZE = """
import json, os, resource, signal, sys
from fractions import Fraction
from pathlib import Path
import numpy as np
from vda.errors import OutputError
from vda.outputs.writers import DepthStore, Staging, write_errors
out = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so that write() fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, resource.RLIM_INFINITY))
staging = Staging(out)
result = {}
try:
    with write_errors(out):
        store = DepthStore(staging.path("clip.f32"), 64, 64)
        try:
            for _ in range(100):  # 1.6 MB, beyond the 256 KiB limit
                store.append(np.ones((1, 64, 64), np.float32))
        finally:
            store.close()
        store.write_npz(staging.path("clip_depths.npz"), Fraction(24))
        staging.commit()
except OutputError as exc:
    staging.abort()
    result["error"] = str(exc)
result["left"] = sorted(os.listdir(out))
print(json.dumps(result))
"""


def test_write_beyond_the_file_size_limit_is_one_output_error_and_leaves_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CHILD_FSIZE, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "File too large" in result["error"] and str(tmp_path) in result["error"] and "\n" not in result["error"]
    assert result["left"] == []


# ---------------------------------------------------------------- end to end: a damaged phone clip
def test_damaged_rotated_clip_runs_end_to_end_upright(tmp_path, random_checkpoint):
    from test_pipeline import compose_infer, infer_overrides, run_composed

    frames = synthetic_frames(COUNT, 48, 64)
    whole = encode(tmp_path / "whole.mp4", frames, rotation=-90, options={"movflags": "faststart"})
    data = whole.read_bytes()
    middle = len(data) // 2
    video = tmp_path / "phone.mp4"
    video.write_bytes(data[:middle] + bytes(300) + data[middle + 300 :])
    decoded, reader = read(video)
    assert 0 < len(decoded) < COUNT and decoded.shape[1:3] == (64, 48)  # upright: portrait
    cfg = compose_infer(infer_overrides(video, tmp_path / "out", random_checkpoint, "output.src=true"))
    result = run_composed(cfg)
    depths = np.load(tmp_path / "out" / "phone_depths.npz")["depths"]
    assert depths.shape == (len(decoded), 64, 48) and np.isfinite(depths).all()
    assert result.frames == len(decoded)
    with av.open(str(tmp_path / "out" / "phone_src.mp4")) as copy:
        assert (copy.streams.video[0].width, copy.streams.video[0].height) == (48, 64)
