"""``output.exr``: one single-channel float32 OpenEXR image per frame (channel ``Z``), as the published
``run.py --save_exr`` writes: ``{stem}_depths_exr/frame_00000.exr ...``. Needs the ``openexr`` package
(``pip install 'vda[exr]'``)."""

from __future__ import annotations

from typing import Callable

from vda.outputs.base import OutputWriter
from vda.outputs.writers import DepthStore

CHANNEL = "Z"


def frame_name(index: int) -> str:
    return f"frame_{index:05d}.exr"


class ExrWriter(OutputWriter):
    def finish(self, store: DepthStore, on_progress: Callable[[int], object]) -> None:
        import OpenEXR

        self.path.mkdir()
        index = 0
        for chunk in store.chunks():
            for depth in chunk:
                header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
                with OpenEXR.File(header, {CHANNEL: depth}) as image:
                    image.write(str(self.path / frame_name(index)))
                index += 1
            on_progress(len(chunk))


__all__ = ["CHANNEL", "ExrWriter", "frame_name"]
