"""Depth algorithms beside the offline engine and the stream: shot-cut detection."""
