"""The outputs that need the whole depth (its global range): npz, preview and 16-bit PNGs.

:func:`write_second_pass` runs after the last window. The npz assembly (a plain copy of the scratch file)
runs in a thread while the preview and the PNGs are written, and each part reports progress on its own
tqdm bar (behind ``progress``) instead of a silent pause after the main bar reached 100 %.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Optional

from tqdm import tqdm

from vda.pipeline.outputs import DepthStore, depth_bytes, write_png16, write_preview
from vda.video.writer import DEFAULT_PRESET


def _bar(desc: str, total: int, progress: bool, unit: str = "frame") -> tqdm:
    scaled = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}
    return tqdm(total=total, unit=unit, desc=desc, disable=not progress, leave=False, dynamic_ncols=True, **scaled)


def write_second_pass(
    store: DepthStore,
    fps: Fraction,
    npz: Optional[Path] = None,
    vis: Optional[Path] = None,
    png16: Optional[Path] = None,
    grayscale: bool = False,
    preset: str = DEFAULT_PRESET,
    unit: str = "relative (inverse depth, arbitrary scale)",
    progress: bool = False,
    desc: str = "",
) -> None:
    """Write each output whose path is given, from the closed ``store``; returns when all are complete.

    ``npz``: the ``.npz`` file; ``vis``: the preview video (``grayscale``, libx264 ``preset``); ``png16``: the
    PNG directory (``unit`` goes to its ``scale.json``). ``desc`` prefixes the progress bars' labels.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vda-npz") as pool:
        npz_job = npz_bar = None
        if npz is not None:
            npz_bar = _bar(f"{desc} npz".strip(), depth_bytes(store.count, store.height, store.width), progress, "B")
            npz_job = pool.submit(store.write_npz, npz, fps, npz_bar.update)
        try:
            if vis is not None:
                with _bar(f"{desc} preview".strip(), store.count, progress) as bar:
                    write_preview(store, vis, fps, grayscale, preset, bar.update)
            if png16 is not None:
                with _bar(f"{desc} png16".strip(), store.count, progress) as bar:
                    write_png16(store, png16, unit, on_frames=bar.update)
        finally:
            if npz_job is not None:
                try:
                    npz_job.result()  # also after a failure above: nothing may write once the caller cleans up
                finally:
                    npz_bar.close()


__all__ = ["write_second_pass"]
