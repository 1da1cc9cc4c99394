"""On-disk cache of built graphs: one folder per key, trusted only through its manifest.

An entry is a folder of files plus ``manifest.json`` (the key and every file's size and SHA-256), written
last and atomically: a folder without a manifest, with another key, or with a missing, truncated or altered
file is stale or corrupt, and is rebuilt. Entries are built in a temporary folder beside the final one and
moved into place, so a crashed build leaves nothing that looks valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

MANIFEST = "manifest.json"
CACHE_ENV = "VDA_CACHE_DIR"


def cache_dir() -> Path:
    """``$VDA_CACHE_DIR``, else the user cache folder (XDG on Linux, Library/Caches on macOS, LOCALAPPDATA)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "vda"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "vda" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vda"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def write_manifest(folder: Path, key: dict[str, Any]) -> None:
    """Record every file of ``folder`` (but the manifest) with its size and hash; atomic, so written last."""
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"key": key, "files": files}, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)


def entry_is_valid(folder: Path, key: dict[str, Any]) -> bool:
    """Whether ``folder`` holds a complete build for ``key``: manifest present and every file intact."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("key") != json.loads(json.dumps(key)):
        return False
    for name, record in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != record["bytes"] or file_sha256(path) != record["sha256"]:
            return False
    return bool(manifest.get("files"))


def cached_build(name: str, key: dict[str, Any], build: Callable[[Path], None], root: Path | None = None) -> Path:
    """The folder of the valid entry for ``key``, running ``build(folder)`` first when there is none.

    ``name`` is a readable prefix of the folder name; the rest is a hash of ``key``.
    """
    root = Path(root) if root is not None else cache_dir()
    folder = root / f"{name}-{key_digest(key)[:16]}"
    if entry_is_valid(folder, key):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        build(staging)
        write_manifest(staging, key)
        if folder.exists():
            shutil.rmtree(folder)  # stale or corrupt
        try:
            os.replace(staging, folder)
        except OSError:
            if not entry_is_valid(folder, key):  # another process moved its build in first: fine if valid
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


__all__ = ["CACHE_ENV", "MANIFEST", "cache_dir", "cached_build", "entry_is_valid", "write_manifest"]
