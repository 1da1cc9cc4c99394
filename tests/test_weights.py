"""Checkpoints: official layout round trip, clear errors, offline download."""

import pytest
import torch

import vda.weights as weights
from vda.errors import CheckpointError
from vda import build_model
from vda.weights import official_checkpoint, random_state_dict, save_checkpoint


@pytest.mark.parametrize("metric", [False, True])
def test_checkpoint_round_trips_strictly(tmp_path, metric):
    state = random_state_dict("vits", metric=metric, seed=7)
    path = save_checkpoint(state, tmp_path / "video_depth_anything_vits.pth")
    assert not list(tmp_path.glob("*.tmp"))
    model = build_model("vits", metric=metric, checkpoint=path)
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # the file is the official layout: a flat dict of tensors that plain torch can read
    raw = torch.load(path, weights_only=True)
    assert isinstance(raw, dict) and set(raw) == set(state)


def test_wrong_encoder_is_named(tmp_path):
    path = save_checkpoint(random_state_dict("vits"), tmp_path / "ckpt.pth")
    with pytest.raises(CheckpointError, match="encoder=vits but the model is encoder=vitb"):
        build_model("vitb", checkpoint=path)


def test_incomplete_checkpoint_is_explained(tmp_path):
    state = random_state_dict("vits")
    del state["head.scratch.output_conv1.bias"]
    path = save_checkpoint(state, tmp_path / "ckpt.pth")
    with pytest.raises(CheckpointError, match="1 missing"):
        build_model("vits", checkpoint=path)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        build_model("vits", checkpoint=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        build_model("vits", checkpoint=bad)


def test_official_names():
    ckpt = official_checkpoint("vitl", metric=True)
    assert ckpt.repo_id == "depth-anything/Metric-Video-Depth-Anything-Large"
    assert ckpt.filename == "metric_video_depth_anything_vitl.pth"
    assert official_checkpoint("vits").licence == "Apache-2.0"
    assert official_checkpoint("vitb").licence == "CC-BY-NC-4.0"


def test_auto_offline_fails_with_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(CheckpointError) as info:
        weights.download_official("vits", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "video_depth_anything_vits.pth" in message and "model.checkpoint=" in message


def test_auto_uses_the_hub_cache_without_network(tmp_path, monkeypatch):
    """A file already in the hub cache is used as is, even with the network down."""
    calls = []

    def fake_download(repo_id, filename, cache_dir=None, local_files_only=False):
        calls.append(local_files_only)
        return str(tmp_path / filename)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    monkeypatch.setattr(weights, "hub_reachable", lambda *a, **k: False)
    path = weights.download_official("vits", cache_dir=tmp_path)
    assert path.name == "video_depth_anything_vits.pth" and calls == [True]
