"""Backend ``torch`` (the default): the network itself, run eagerly; it alone steps frames one at a time."""

from __future__ import annotations

from vda.backends.base import BackendConfig, register_backend
from vda.model.video_depth_anything import VideoDepthAnything


def eager(model: VideoDepthAnything, options: BackendConfig) -> VideoDepthAnything:
    """The network is its own runner: ``encode``, ``decode`` and ``__call__`` as the engines use them."""
    return model


register_backend(BackendConfig.name, eager, help="eager PyTorch (the default)", steps_frames=True)
