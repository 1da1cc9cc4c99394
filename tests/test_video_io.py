"""Video input/output: probing, lazy decoding with max_res/target_fps/max_len, preview and PNG writers."""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import decode_all
from vda.video.synthetic import synthetic_frames, write_video

from vda.errors import VideoError
from vda.video import (
    VideoReader,
    VideoWriter,
    colorize,
    decoded_size,
    encode_png16,
    frame_stride,
    inferno_lut,
    pick_encoder,
    probe,
)


def test_probe_reads_size_rate_and_count(make_video):
    path = make_video(count=30, height=48, width=64, fps=24)
    info = probe(path, max_res=1280)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == Fraction(24) and info.stride == 1
    assert info.estimated_frames == 30


def test_reader_yields_decoded_rgb_frames_lazily(make_video):
    path = make_video(count=12)
    frames = list(VideoReader(probe(path)))
    reference = decode_all(path)
    assert len(frames) == 12
    assert all(f.dtype == np.uint8 and f.shape == (48, 64, 3) for f in frames)
    np.testing.assert_array_equal(np.stack(frames), reference)
    first = next(iter(VideoReader(probe(path))))  # a fresh iteration starts from frame 0
    np.testing.assert_array_equal(first, reference[0])


@pytest.mark.parametrize(
    "size, max_res, expected",
    [
        ((1920, 1080), 1280, (1280, 720)),
        ((1080, 1920), 1280, (720, 1280)),
        ((1920, 1080), 1000, (1000, 562)),  # 562.5 rounds half to even
        ((1000, 334), 500, (500, 168)),  # 167 is odd -> 168
        ((640, 480), 1280, (640, 480)),  # within the limit: untouched
        ((641, 481), -1, (641, 481)),  # no limit
    ],
)
def test_max_res_keeps_aspect_with_even_sides(size, max_res, expected):
    assert decoded_size(*size, max_res) == expected


def test_max_res_downscales_decoded_frames(tmp_path):
    path = write_video(tmp_path / "wide.mp4", synthetic_frames(5, height=120, width=160))
    info = probe(path, max_res=64)
    assert (info.width, info.height) == (64, 48)
    frames = list(VideoReader(info))
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)


@pytest.mark.parametrize(
    "source_fps, target, stride", [(24, -1, 1), (24, 12, 2), (30, 12, 2), (30, 10, 3), (24, 48, 1)]
)
def test_frame_stride(source_fps, target, stride):
    assert frame_stride(Fraction(source_fps), target) == stride


def test_target_fps_and_max_len_select_frames(make_video):
    path = make_video(count=25, fps=24)
    reference = decode_all(path)
    info = probe(path, target_fps=12)
    frames = list(VideoReader(info))
    assert info.stride == 2 and info.fps == Fraction(12) and info.estimated_frames == 13
    np.testing.assert_array_equal(np.stack(frames), reference[::2])
    info = probe(path, target_fps=12, max_len=5)
    frames = list(VideoReader(info))
    assert len(frames) == 5 and info.estimated_frames == 5
    np.testing.assert_array_equal(np.stack(frames), reference[:10:2])


def test_rational_frame_rate_is_kept_exactly(tmp_path):
    ntsc = Fraction(30000, 1001)
    path = write_video(tmp_path / "ntsc.mp4", synthetic_frames(6), fps=ntsc)
    info = probe(path)
    assert info.fps == ntsc
    out = tmp_path / "copy.mp4"
    with VideoWriter(out, info.width, info.height, info.fps) as writer:
        for frame in VideoReader(info):
            writer.write(frame)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == ntsc
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert len(list(container.decode(stream))) == 6


def test_writer_pads_odd_sides_to_even(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 33, 21, Fraction(10)) as writer:
        for _ in range(3):
            writer.write(np.full((21, 33, 3), 200, np.uint8))
    decoded = decode_all(out)
    assert decoded.shape == (3, 22, 34, 3)
    assert abs(int(decoded[0, 5, 5, 0]) - 200) <= 3


def test_writer_rejects_wrong_frame_shape(tmp_path):
    with pytest.raises(VideoError):
        with VideoWriter(tmp_path / "x.mp4", 32, 32, Fraction(10)) as writer:
            writer.write(np.zeros((16, 16, 3), np.uint8))


def test_encoder_fallback_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="vda.video.writer"):
        name = pick_encoder("no_such_encoder")
    assert name in ("libopenh264", "h264_videotoolbox", "h264_nvenc", "mpeg4")
    assert "not available" in caplog.text
    assert pick_encoder() == "libx264"


def test_colorize_inferno_and_grayscale():
    depth = np.linspace(0.0, 2.0, 12, dtype=np.float32).reshape(1, 3, 4)
    lut = inferno_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    rgb = colorize(depth, 0.0, 2.0, lut)
    assert rgb.shape == (1, 3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0, 0], lut[0])
    np.testing.assert_array_equal(rgb[0, -1, -1], lut[255])
    gray = colorize(depth, 0.0, 2.0, None)
    assert gray[0, 0, 0].tolist() == [0, 0, 0] and gray[0, -1, -1].tolist() == [255, 255, 255]
    flat = colorize(np.ones((2, 2), np.float32), 1.0, 1.0, None)  # constant depth: no division by zero
    assert flat.max() == 0


def test_png16_round_trips_through_ffmpeg(tmp_path):
    image = (np.arange(7 * 9, dtype=np.uint32).reshape(7, 9) * 1000 % 65536).astype(np.uint16)
    path = tmp_path / "d.png"
    path.write_bytes(encode_png16(image))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        assert frame.format.name.startswith("gray16")
        np.testing.assert_array_equal(frame.to_ndarray(format="gray16le"), image)


def test_probe_rejects_bad_inputs(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        probe(tmp_path / "missing.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(VideoError, match="cannot read"):
        probe(text)
