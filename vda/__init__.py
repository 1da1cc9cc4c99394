"""vda: inference and benchmark harness for Video Depth Anything."""

__version__ = "0.1.0"
