"""The Video Depth Anything network (DINOv2 encoder + temporal DPT head); build it with :func:`vda.build_model`."""

from vda.model.video_depth_anything import DEFAULT_ENCODER, ENCODERS, EncoderSpec, VideoDepthAnything

__all__ = ["DEFAULT_ENCODER", "ENCODERS", "EncoderSpec", "VideoDepthAnything"]
