"""Frame sources for stream mode: video files, image folders, live sources (lavfi stands in for a camera)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from conftest import decode_all
from vda.video.synthetic import synthetic_frames
from vda.errors import VideoError
from vda.video.sources import ImageFolderSource, LiveSource, VideoFileSource, open_source, parse_live


def write_images(folder, frames, suffix=".png", names=None):
    folder.mkdir(exist_ok=True)
    names = names or [f"frame_{i:04d}{suffix}" for i in range(len(frames))]
    for name, frame in zip(names, frames):
        Image.fromarray(frame).save(folder / name)
    return folder


def test_image_folder_sorted_by_name(tmp_path):
    frames = synthetic_frames(5, 48, 64, seed=1)
    order = [3, 0, 4, 1, 2]  # written out of order
    folder = write_images(tmp_path / "imgs", [frames[i] for i in order], names=[f"f{i:02d}.png" for i in order])
    (folder / "notes.txt").write_text("not an image")
    source = open_source(folder)
    assert isinstance(source, ImageFolderSource)
    assert (source.width, source.height, source.fps) == (64, 48, Fraction(30))
    assert not source.is_live and source.estimated_frames == 5
    np.testing.assert_array_equal(np.stack(list(source)), frames)
    np.testing.assert_array_equal(np.stack(list(source)), frames)  # files and folders can be read again


def test_image_folder_max_res_max_len_fps_and_jpg(tmp_path):
    folder = write_images(tmp_path / "imgs", synthetic_frames(4, 48, 64), suffix=".jpg")
    source = open_source(folder, max_res=32, max_len=3, image_fps=Fraction(24000, 1001))
    assert (source.width, source.height, source.fps, source.estimated_frames) == (32, 24, Fraction(24000, 1001), 3)
    frames = list(source)
    assert len(frames) == 3 and frames[0].shape == (24, 32, 3) and frames[0].dtype == np.uint8


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(VideoError, match="holds no png/jpg/jpeg"):
        open_source(tmp_path / "empty")
    bad = write_images(tmp_path / "bad", synthetic_frames(2, 48, 64))
    (bad / "frame_0001.png").write_bytes(b"not a png at all")
    with pytest.raises(VideoError, match="cannot read image .*frame_0001.png"):
        open_source(bad)
    mixed = write_images(tmp_path / "mixed", synthetic_frames(2, 48, 64))
    Image.fromarray(synthetic_frames(1, 40, 64)[0]).save(mixed / "frame_0002.png")
    with pytest.raises(VideoError, match="frame_0002.png is 64x40 .* must have one size"):
        open_source(mixed)


def test_video_file(make_video):
    path = make_video("clip.mp4", count=12, fps=24)
    source = open_source(path, max_len=10)
    assert isinstance(source, VideoFileSource)
    assert (source.width, source.height, source.fps, source.is_live) == (64, 48, Fraction(24), False)
    assert source.estimated_frames == 10
    np.testing.assert_array_equal(np.stack(list(source)), decode_all(path)[:10])


def test_live_source_through_an_ffmpeg_input_format():
    with open_source("lavfi:testsrc=size=64x48:rate=10:duration=1") as source:
        assert isinstance(source, LiveSource)
        assert (source.width, source.height, source.fps) == (64, 48, Fraction(10))
        assert source.is_live and source.estimated_frames is None
        frames = list(source)
        assert len(frames) == 10 and frames[0].shape == (48, 64, 3) and frames[0].std() > 0
        with pytest.raises(VideoError, match="only once"):
            list(source)
    with open_source("lavfi:testsrc=size=64x48:rate=10", max_res=32, max_len=4) as endless:
        frames = list(endless)
        assert len(frames) == 4 and frames[-1].shape == (24, 32, 3)


def test_source_naming_and_errors(tmp_path):
    assert parse_live("rtsp://camera.local:554/stream") == ("rtsp://camera.local:554/stream", None)
    assert parse_live("v4l2:/dev/video0") == ("/dev/video0", "v4l2")
    assert parse_live("avfoundation:0") == ("0", "avfoundation")
    assert parse_live("clip.mp4") is None and parse_live("C:/videos/clip.mp4") is None
    with pytest.raises(VideoError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="no input format 'nosuchdevice'"):
        open_source("nosuchdevice:0")
    with pytest.raises(VideoError, match="cannot open the live source"):
        open_source("rtsp://127.0.0.1:9/none", timeout_s=2)
