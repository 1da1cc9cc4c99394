"""Output files of an inference run, written so that none appears before it is complete.

* :class:`Staging` hands out hidden temporary names in the output directory and renames them all to their
  final names in :meth:`Staging.commit` (or deletes them all in :meth:`Staging.abort`).
* :class:`DepthStore` appends depth maps to a raw float32 file as windows complete (memory stays flat),
  keeps the running min/max, reads the maps back in chunks for the second pass, and assembles the
  ``.npz`` by streaming the raw file into the zip entry.
* :func:`write_preview` and :func:`write_png16` are the second-pass writers.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from vda.errors import OutputError
from vda.video.writer import DEFAULT_PRESET, Colorizer, VideoWriter, encode_png16, inferno_lut

logger = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 16 << 20
PNG16_MAX = 65535
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry
PNG16_WORKERS = min(4, os.cpu_count() or 1)


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it is writable by creating and deleting a file in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output directory {path} ({exc.strerror or exc}); pick a writable output_dir="
        ) from None
    probe_file = path / f".vda-write-test-{os.getpid()}"
    try:
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as exc:
        raise OutputError(
            f"output directory {path} is not writable ({exc.strerror or exc}); pick a writable output_dir="
        ) from None
    return path


def depth_bytes(frames: int, height: int, width: int) -> int:
    """Size of ``frames`` float32 depth maps."""
    return frames * height * width * np.dtype(np.float32).itemsize


def check_disk_space(directory: Path, frames: int | None, height: int, width: int, outputs: dict[str, int]) -> None:
    """Refuse up front a run whose results cannot fit: the depth's scratch file plus every enabled output
    (``outputs``: estimated bytes per frame by output name, see :func:`vda.outputs.formats.output_bytes_per_frame`)."""
    if frames is None:
        return
    need = depth_bytes(frames, height, width) + frames * sum(outputs.values())
    free = shutil.disk_usage(directory).free
    if need > free:
        gib = 1 << 30
        largest = max(outputs, key=outputs.get)
        raise OutputError(
            f"{directory} has {free / gib:.1f} GiB free but ~{frames} frames at {width}x{height} need "
            f"~{need / gib:.1f} GiB (scratch file + {' + '.join(outputs)}); free space, pick another output_dir=, "
            f"lower infer.max_res= or infer.max_len=, or set output.{largest}=false"
        )


def staged_prefix(name: str) -> str:
    """Start of the hidden temporary name of output ``name`` (a pid and the suffix follow)."""
    return f".{name[: len(name) - len(Path(name).suffix)]}.partial-"


def scratch_prefix(stem: str) -> str:
    """Start of the hidden scratch file of the depth of input ``stem`` (a pid and ``.f32`` follow)."""
    return f".{stem}_depths.scratch-"


def scratch_path(directory: Path, stem: str) -> Path:
    return directory / f"{scratch_prefix(stem)}{os.getpid()}.f32"


class Staging:
    """Temporary names for outputs, renamed together on success, removed together on failure."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)

    def path(self, name: str) -> Path:
        """Temporary path for the output ``name`` (hidden, same suffix, same directory)."""
        final = self.directory / name
        tmp = self.directory / f"{staged_prefix(name)}{os.getpid()}{Path(name).suffix}"
        self._pending.append((tmp, final))
        return tmp

    def commit(self) -> list[Path]:
        done = []
        for tmp, final in self._pending:
            if final.is_dir():
                shutil.rmtree(final)
            os.replace(tmp, final)
            done.append(final)
        self._pending = []
        return done

    def abort(self) -> None:
        for tmp, _ in self._pending:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        self._pending = []


def _entry(name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed timestamp, so equal depth gives byte-identical ``.npz`` files."""
    return zipfile.ZipInfo(name, date_time=ZIP_DATE)


class DepthStore:
    """Depth maps ``[H, W]`` float32 appended to a raw scratch file, read back in chunks."""

    def __init__(self, path: Path, height: int, width: int) -> None:
        self.path = path
        self.height, self.width = height, width
        self.count = 0
        self.min = float("inf")
        self.max = float("-inf")
        self._file = open(path, "wb")

    def append(self, maps: np.ndarray) -> None:
        if maps.shape[1:] != (self.height, self.width) or maps.dtype != np.float32:
            raise ValueError(f"expected float32 maps [k, {self.height}, {self.width}], got {maps.dtype} {maps.shape}")
        if len(maps) == 0:
            return
        self._file.write(np.ascontiguousarray(maps).tobytes())
        self.count += len(maps)
        self.min = min(self.min, float(maps.min()))
        self.max = max(self.max, float(maps.max()))

    def close(self) -> None:
        self._file.close()

    def chunks(self, frames_per_chunk: int = 16) -> Iterator[np.ndarray]:
        """The stored maps, ``frames_per_chunk`` at a time, read from disk (plain reads, not a memory map,
        so the pages read do not add up in the resident set)."""
        per_chunk = frames_per_chunk * self.height * self.width
        with open(self.path, "rb") as raw:
            for _ in range(0, self.count, frames_per_chunk):
                chunk = np.fromfile(raw, dtype=np.float32, count=per_chunk)
                yield chunk.reshape(-1, self.height, self.width)

    def write_npz(self, path: Path, fps: Fraction, on_bytes: Optional[Callable[[int], None]] = None) -> None:
        """An ``np.load``-able ``.npz`` with ``depths`` [N, H, W] float32 and ``fps``, streamed from disk.

        ``on_bytes(n)`` is called after each copied block of ``n`` bytes (progress).
        """
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
            "fortran_order": False,
            "shape": (self.count, self.height, self.width),
        }
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            with archive.open(_entry("depths.npy"), "w", force_zip64=True) as entry, open(self.path, "rb") as raw:
                np.lib.format.write_array_header_1_0(entry, header)
                while block := raw.read(COPY_CHUNK_BYTES):
                    entry.write(block)
                    if on_bytes is not None:
                        on_bytes(len(block))
            fps_bytes = io.BytesIO()
            np.save(fps_bytes, np.float64(fps))
            archive.writestr(_entry("fps.npy"), fps_bytes.getvalue())


def write_preview(
    store: DepthStore,
    path: Path,
    fps: Fraction,
    grayscale: bool,
    preset: str = DEFAULT_PRESET,
    on_frames: Optional[Callable[[int], None]] = None,
) -> None:
    """Colour-mapped (inferno) or grayscale preview, normalised by the global min and max of the depth.

    ``preset`` is libx264's speed preset; ``on_frames(n)`` is called after each ``n`` frames written.
    """
    colorizer = Colorizer(store.min, store.max, None if grayscale else inferno_lut())
    image = np.empty((store.height, store.width, 3), dtype=np.uint8)  # reused: the encoder copies each frame
    with VideoWriter(path, store.width, store.height, fps, preset=preset) as writer:
        for chunk in store.chunks():
            for depth in chunk:
                writer.write(colorizer(depth, image))
            if on_frames is not None:
                on_frames(len(chunk))


def write_png16(
    store: DepthStore,
    directory: Path,
    unit: str,
    workers: int = PNG16_WORKERS,
    on_frames: Optional[Callable[[int], None]] = None,
) -> float:
    """One 16-bit PNG per frame (``000000.png``...) plus ``scale.json``; depth = value * scale.

    The PNGs are encoded by ``workers`` threads (Pillow and zlib release the GIL), at most two chunks of
    frames in flight; ``on_frames(n)`` is called as frames are written.
    """
    directory.mkdir()
    scale = store.max / PNG16_MAX if store.max > 0 else 1.0

    def save(index: int, image: np.ndarray) -> None:
        (directory / f"{index:06d}.png").write_bytes(encode_png16(image))

    index = 0
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="vda-png16") as pool:
        pending: list[Future] = []
        try:
            for chunk in store.chunks():
                values = np.clip(np.rint(chunk / scale), 0, PNG16_MAX).astype(np.uint16)
                if len(pending) >= 2 * len(values):
                    done, pending = pending[: len(values)], pending[len(values) :]
                    _wait_all(done, on_frames)
                for image in values:
                    pending.append(pool.submit(save, index, image))
                    index += 1
            _wait_all(pending, on_frames)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    meta = {"scale": scale, "offset": 0.0, "formula": "depth = png_value * scale", "unit": unit, "frames": index}
    (directory / "scale.json").write_text(json.dumps(meta, indent=2) + "\n")
    return scale


def _wait_all(futures: list[Future], on_frames: Optional[Callable[[int], None]]) -> None:
    for future in futures:
        future.result()
    if on_frames is not None and futures:
        on_frames(len(futures))


def check_existing(output_dir: str | os.PathLike, names: Iterable[str], overwrite: bool) -> None:
    """Refuse, before any work, a run whose results (``names`` in ``output_dir``) already exist, unless
    ``overwrite``."""
    if overwrite:
        return
    existing = [name for name in names if (Path(output_dir) / name).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more result file(s))" if len(existing) > 1 else ""
        raise OutputError(
            f"{Path(output_dir) / existing[0]} already exists{more}; pass output.overwrite=true to replace it "
            "or pick another output_dir="
        )


NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextlib.contextmanager
def write_errors(directory: str | os.PathLike) -> Iterator[None]:
    """Turn a write that runs out of room (disk full, quota, file-size limit) into one :class:`OutputError`
    line; other errors pass through. Use it around the writes and closes, with :meth:`Staging.abort` on
    the way out so that nothing half-written stays."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_ROOM_ERRNOS:
            raise
        raise OutputError(
            f"writing to {directory} failed: {os.strerror(exc.errno)}; free space (or raise the file-size limit), "
            "pick another output_dir=, or write less (infer.max_res=, infer.max_len=, output.npz=false)"
        ) from None


__all__ = [
    "DepthStore",
    "Staging",
    "check_existing",
    "check_output_dir",
    "scratch_path",
    "scratch_prefix",
    "staged_prefix",
    "write_errors",
    "write_png16",
    "write_preview",
]
