"""The Video Depth Anything network (DINOv2 encoder + temporal DPT head); build it with :func:`vda.build_model`."""

from vda.model.video_depth_anything import ENCODERS, EncoderSpec, VideoDepthAnything

__all__ = ["ENCODERS", "EncoderSpec", "VideoDepthAnything"]
