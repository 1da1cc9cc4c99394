"""``output.ply`` (metric models): one binary coloured point cloud per frame, as the published ``run.py``
writes for metric checkpoints: ``{stem}_ply/point0000.ply ...``. Needs ``plyfile`` (``pip install 'vda[ply]'``).

A pinhole camera with the principal point at the frame centre: pixel ``(u, v)`` of depth ``z`` (metres) is
the point ``x = (u - W/2) / fx * z``, ``y = (v - H/2) / fy * z``, ``z``, coloured by the decoded frame's
pixel; ``output.ply_stride=n`` keeps every n-th pixel in both directions. The decoded frames' colours (of the
kept pixels) wait in a scratch file inside the staged folder until the depth is complete, so memory stays flat.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from vda.outputs.base import OutputContext, OutputWriter
from vda.outputs.writers import DepthStore

DEFAULT_FOCAL_LENGTH = 470.4  # the published run.py's --focal-length-x/y
COLOURS_NAME = ".colours.rgb"
VERTEX = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]


def frame_name(index: int) -> str:
    return f"point{index:04d}.ply"


def pixel_rays(height: int, width: int, fx: float, fy: float, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(u - W/2) / fx`` and ``(v - H/2) / fy`` of the kept pixels, row-major, float32 (multiply by ``z``)."""
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    return ((u - width / 2) / fx).astype(np.float32).ravel(), ((v - height / 2) / fy).astype(np.float32).ravel()


def point_cloud(depth: np.ndarray, colours: np.ndarray, rays: tuple[np.ndarray, np.ndarray], stride: int) -> np.ndarray:
    """The PLY vertices of one frame: depth ``[H, W]``, the kept pixels' colours ``[n, 3]`` uint8."""
    z = np.ascontiguousarray(depth[::stride, ::stride]).ravel()
    vertices = np.empty(len(z), dtype=VERTEX)
    vertices["x"] = rays[0] * z
    vertices["y"] = rays[1] * z
    vertices["z"] = z
    vertices["red"], vertices["green"], vertices["blue"] = colours[:, 0], colours[:, 1], colours[:, 2]
    return vertices


class PlyWriter(OutputWriter):
    def __init__(self, path, context: OutputContext, sidecar=None) -> None:
        super().__init__(path, context, sidecar)
        self.stride = context.options.ply_stride
        path.mkdir()
        self.colours_path = path / COLOURS_NAME
        self.colours: Optional[object] = open(self.colours_path, "wb")

    def add_frame(self, frame: np.ndarray) -> None:
        self.colours.write(np.ascontiguousarray(frame[:: self.stride, :: self.stride]).tobytes())

    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        from plyfile import PlyData, PlyElement

        self.colours.close()
        self.colours = None
        options = self.context.options
        rays = pixel_rays(store.height, store.width, options.focal_length_x, options.focal_length_y, self.stride)
        per_frame = len(rays[0]) * 3
        index = 0
        with open(self.colours_path, "rb") as raw:
            for chunk in store.chunks():
                for depth in chunk:
                    colours = np.fromfile(raw, dtype=np.uint8, count=per_frame).reshape(-1, 3)
                    element = PlyElement.describe(point_cloud(depth, colours, rays, self.stride), "vertex")
                    PlyData([element]).write(str(self.path / frame_name(index)))
                    index += 1
                on_progress(len(chunk))
        self.colours_path.unlink()

    def abort(self) -> None:
        if self.colours is not None:
            self.colours.close()
            self.colours = None


__all__ = ["DEFAULT_FOCAL_LENGTH", "PlyWriter", "frame_name", "pixel_rays", "point_cloud"]
