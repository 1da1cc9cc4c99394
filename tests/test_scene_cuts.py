"""Shot cuts: a clip made of two scenes is split where they meet (offline: each shot on its own windows and
alignment; stream: the state starts again), and continuous motion is never cut."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from test_pipeline import compose_infer, infer_overrides, run_composed

import vda
from vda.depth.scenes import DEFAULT_SCENE_THRESHOLD, SceneCutDetector, ShotSplitter
from vda.depth import WindowedDepth
from vda.depth.modes import StreamEngine
from vda.runtime.timing import StageTimes
from vda.depth.stream import StreamingDepth
from vda.video.synthetic import iter_synthetic_frames, synthetic_frames, write_video

INPUT = 28
CUT = 26  # the first frame of the second scene (2 windows before it, 1 after)
SECOND = 10


def second_scene(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Another scene: the synthetic pattern with other noise, upside down, colours reversed."""
    return np.ascontiguousarray(synthetic_frames(count, height, width, seed=7)[:, ::-1, :, ::-1])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def scenes() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_frames(CUT, 48, 64, seed=0), second_scene(SECOND)


def offline(model, frames: np.ndarray, threshold=None) -> tuple[np.ndarray, WindowedDepth]:
    engine = WindowedDepth(model, INPUT, scene_threshold=threshold)
    return torch.cat(list(engine.run(iter(frames)))).numpy(), engine


def test_the_detector_flags_the_join_and_nothing_else(scenes):
    a, b = scenes
    detector = SceneCutDetector()
    flags = [detector(frame) for frame in np.concatenate([a, b])]
    assert [i for i, flag in enumerate(flags) if flag] == [CUT]
    assert detector.cuts == 1


@pytest.mark.parametrize("height, width", [(48, 64), (64, 48), (240, 320)])
def test_fast_continuous_motion_is_never_a_cut(height, width):
    """The synthetic moving clips the tests use (patterns moving 1-3 px a frame, with noise)."""
    detector = SceneCutDetector()
    scores = []
    for frame in iter_synthetic_frames(60, height, width, seed=1):
        assert not detector(frame)
        scores.append(detector.last_score)
    assert max(scores) < DEFAULT_SCENE_THRESHOLD / 4


def test_shot_splitter_hands_out_each_shot_in_order(scenes):
    a, b = scenes
    splitter = ShotSplitter(np.concatenate([a, b, a[:5]]), SceneCutDetector())
    shots = [np.stack(list(shot)) for shot in splitter]
    assert [len(s) for s in shots] == [CUT, SECOND, 5] and splitter.cuts == 2
    np.testing.assert_array_equal(shots[1], b)


def test_offline_with_cuts_equals_each_part_alone_and_no_window_spans_the_cut(tiny_model, scenes):
    a, b = scenes
    joined, engine = offline(tiny_model, np.concatenate([a, b]), DEFAULT_SCENE_THRESHOLD)
    alone_a, engine_a = offline(tiny_model, a)
    alone_b, engine_b = offline(tiny_model, b)
    assert engine.stats.scene_cuts == 1 and engine.stats.frames == CUT + SECOND
    assert engine.stats.windows == engine_a.stats.windows + engine_b.stats.windows  # 2 + 1: none across the cut
    np.testing.assert_allclose(joined[:CUT], alone_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(joined[CUT:], alone_b, rtol=1e-5, atol=1e-6)
    # without cuts the windows do span it and the depth beside it differs: the check above can fail
    uncut, plain = offline(tiny_model, np.concatenate([a, b]))
    assert plain.stats.scene_cuts == 0 and plain.stats.windows == 2
    assert np.abs(uncut[CUT - 8 : CUT + 8] - joined[CUT - 8 : CUT + 8]).max() > 1e-3


def test_cuts_on_change_nothing_without_a_cut(tiny_model):
    frames = synthetic_frames(24, 48, 64, seed=2)  # 2 windows: alignment included
    cut = vda.infer_video(tiny_model, frames, INPUT, scene_threshold=DEFAULT_SCENE_THRESHOLD)  # the Python API's switch
    plain, _ = offline(tiny_model, frames)
    np.testing.assert_array_equal(cut, plain)


def test_stream_resets_its_state_at_the_cut(tiny_model, scenes):
    a, b = scenes[0][:12], scenes[1][:6]  # a short stream: each step attends over 32 slots, whatever the length
    times = StageTimes()
    engine = StreamEngine(tiny_model, INPUT, True, times, DEFAULT_SCENE_THRESHOLD)
    joined = torch.cat(list(engine.run(iter(np.concatenate([a, b]))))).numpy()
    assert engine.stats.scene_cuts == 1 and engine.stats.frames == 18
    assert times.calls["scene_cuts"] == 18  # the detector, timed on every frame
    fresh = StreamingDepth(tiny_model, INPUT)
    alone_b = np.stack([fresh.step(frame) for frame in b])
    np.testing.assert_allclose(joined[12:], alone_b, rtol=1e-5, atol=1e-6)
    uncut = StreamEngine(tiny_model, INPUT, True, StageTimes())
    carried = torch.cat(list(uncut.run(iter(np.concatenate([a, b]))))).numpy()
    assert np.abs(carried[12:] - alone_b).max() > 1e-3  # without the reset the old shot is still attended to


def test_command_counts_cuts_and_lists_its_outputs_in_mlflow(tmp_path, scenes, random_checkpoint):
    a, b = scenes
    video = write_video(tmp_path / "edit.mp4", np.concatenate([a, b]))
    out = tmp_path / "out"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = infer_overrides(video, out, random_checkpoint, "infer.scene_cuts=true", "output.depth_video=true")
    overrides = [o for o in overrides if o != "mlflow.enabled=false"] + [f"mlflow.tracking_uri={uri}", "mlflow.experiment=cuts"]
    result = run_composed(compose_infer(overrides))
    assert result.stats.scene_cuts == 1
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("cuts").experiment_id])
    assert run.data.metrics["scene_cuts"] == 1 and run.data.metrics["stage_scene_cuts_s"] > 0  # the detector's time
    assert run.data.params["infer.scene_cuts"] == "True"
    assert run.data.tags["outputs"] == "edit_depths.npz,edit_vis.mp4,edit_depth16.mkv,edit_depth16.json"
    assert sorted(p.name for p in Path(out).iterdir()) == sorted(run.data.tags["outputs"].split(","))
