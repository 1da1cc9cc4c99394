"""Depth for a whole dataset: a folder of videos or an ``@list.txt``, resumable, in parallel, with a summary.

* :func:`discover` turns ``input=`` into :class:`DatasetItem` s (sorted); each keeps its path relative to the
  dataset root, and its outputs go to the same relative folder under ``output_dir`` (equal stems in different
  folders never collide).
* :func:`parse_shard` / :func:`select_shard`: ``infer.shard=i/n`` keeps every n-th video from the i-th, so
  ``n`` cluster jobs split one dataset without talking to each other.
* A video whose enabled outputs all exist is skipped (:func:`outputs_complete`): outputs only ever appear
  whole, so their presence means done. ``output.overwrite=true`` redoes them.
* :func:`run_dataset` processes the rest in this process or in ``infer.workers`` processes (one model copy
  each), reports a failed video and goes on, tracks each video as an MLflow run nested under one parent, and
  writes ``summary.csv`` (input, status, frames, seconds, error) into ``output_dir``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import multiprocessing
import os
import shutil
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import torch
from tqdm import tqdm

from vda.errors import ConfigError
from vda.depth.process import InferResult, process_video
from vda.factory import runtime_for
from vda.infer import tracked
from vda.infer.config import InferConfig
from vda.infer.single import check_config, hydra_overrides, load_model
from vda.outputs.formats import OUTPUTS, enabled_formats, output_bytes_per_frame, output_names
from vda.outputs.writers import check_disk_space, check_output_dir, scratch_prefix, staged_prefix
from vda.paths import resolve_path
from vda.tracking import client, runs
from vda.tracking import tags as T
from vda.tracking.store import open_store
from vda.tracking.sweep import sweep_parent_run_id
from vda.tracking.ui import runs_url, where_logged
from vda.runtime.device import facts, resolve_device
from vda.video.reader import probe

logger = logging.getLogger(__name__)

# File name endings taken as videos when a folder is the input (compared in lower case).
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".flv", ".3gp"}
)
DEFAULT_GLOB = "**/*"
SUMMARY_FIELDS = ("input", "status", "frames", "seconds", "error")
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
DATASET_KIND = "dataset"


@dataclass(frozen=True)
class DatasetItem:
    """One video of a dataset and where it sits relative to the dataset root."""

    path: Path
    relative: Path  # the output folder is output_dir / relative.parent

    def output_dir(self, root: Path) -> Path:
        return root / self.relative.parent


@dataclass
class VideoOutcome:
    """What happened to one video: a row of ``summary.csv`` (``result`` only for a processed video)."""

    input: str
    status: str
    frames: Optional[int] = None
    seconds: Optional[float] = None
    error: str = ""
    result: Optional[InferResult] = None
    # When its processing started and ended (ms since the epoch).
    start_ms: Optional[int] = None
    end_ms: Optional[int] = None

    def row(self) -> dict[str, str]:
        seconds = "" if self.seconds is None else f"{self.seconds:.3f}"
        frames = "" if self.frames is None else str(self.frames)
        return {"input": self.input, "status": self.status, "frames": frames, "seconds": seconds, "error": self.error}


@dataclass
class DatasetSummary:
    """Every outcome in dataset order, and where ``summary.csv`` was written."""

    outcomes: list[VideoOutcome]
    path: Path
    where: Optional[str] = None  # where the runs were tracked and the URL of their runs table

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    def line(self) -> str:
        return (
            f"{len(self.outcomes)} videos: {self.count(DONE)} done, {self.count(SKIPPED)} skipped, "
            f"{self.failed} failed (summary: {self.path})"
        )


# ---------------------------------------------------------------- discovery
def is_dataset(spec: str) -> bool:
    """Whether ``input=`` names a dataset (``@list`` or a folder) rather than one video."""
    return spec.startswith("@") or resolve_path(spec).is_dir()


def discover(spec: str, glob: Optional[str] = None) -> list[DatasetItem]:
    """The videos of ``spec`` sorted by relative path (relative user paths start at the launch directory).

    A folder gives its files matching ``glob`` (default: everything under it) whose ending is in
    :data:`VIDEO_SUFFIXES`; ``@list.txt`` gives the paths it lists (one a line, ``#`` starts a comment,
    relative ones taken from the list's folder), relative to the deepest folder they all share.
    """
    if spec.startswith("@"):
        if glob is not None:
            raise ConfigError(f"input_glob={glob} filters a folder, but input={spec} is a list; drop input_glob=")
        items = _listed(resolve_path(spec[1:]))
        what = f"list {spec[1:]}"
    else:
        root = resolve_path(spec)
        pattern = glob or DEFAULT_GLOB
        paths = [p for p in root.glob(pattern) if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]
        items = [DatasetItem(p, p.relative_to(root)) for p in paths]
        what = f"folder {root} (input_glob={pattern}, endings {' '.join(sorted(VIDEO_SUFFIXES))})"
    if not items:
        raise ConfigError(f"no video in {what}; check input= and input_glob=")
    seen: dict[Path, DatasetItem] = {}
    for item in sorted(items, key=lambda item: item.relative.as_posix()):
        key = item.relative.parent / item.path.stem
        if key in seen:
            raise ConfigError(
                f"{seen[key].path} and {item.path} would write the same outputs ({key}_*); "
                "rename one or leave one out with input_glob= or the list"
            )
        seen[key] = item
    return list(seen.values())


def _listed(path: Path) -> list[DatasetItem]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the input list {path} ({exc.strerror or exc}); pass input=@<existing file>")
    entries = [line.split("#", 1)[0].strip() for line in lines]
    paths = sorted({Path(os.path.abspath(path.parent / os.path.expanduser(e))) for e in entries if e})
    if not paths:
        return []
    root = Path(os.path.commonpath([p.parent for p in paths]))
    return [DatasetItem(p, p.relative_to(root)) for p in paths]


def parse_shard(text: Optional[str]) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None -> ``(0, 1)``."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise ConfigError(f"infer.shard={text} is not i/n with 0 <= i < n; use e.g. infer.shard=0/4")
    return index, count


def select_shard(items: list[DatasetItem], index: int, count: int) -> list[DatasetItem]:
    """Every ``count``-th item from the ``index``-th: shards are disjoint, cover all, differ by at most one."""
    return items[index::count]


# ---------------------------------------------------------------- resuming
def outputs_complete(directory: Path, stem: str, formats: list[str]) -> bool:
    """Whether every enabled output of ``stem`` exists in ``directory`` (they only ever appear whole)."""
    names = output_names(stem)
    return all((directory / names[name]).exists() for name in formats)


def remove_stale(directory: Path, stems: Iterable[str]) -> None:
    """Delete staged files of ``stems`` that a killed run left behind (hidden ``.partial-``/``.scratch-`` names).

    Only this run's own videos: a parallel job of another shard may be writing other stems in ``directory``.
    """
    if not directory.is_dir():
        return
    prefixes = []
    for stem in stems:
        prefixes += [staged_prefix(name) for name in output_names(stem).values()]
        prefixes.append(scratch_prefix(stem))
    prefixes = tuple(prefixes)
    for path in directory.iterdir():
        if path.name.startswith(prefixes):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


# ---------------------------------------------------------------- one video
def process_item(cfg: InferConfig, model: torch.nn.Module, item: DatasetItem, output_root: Path) -> VideoOutcome:
    """Probe and process one video; any failure becomes a ``failed`` outcome with a one-line error."""
    started, start_ms = time.perf_counter(), int(time.time() * 1000)
    try:
        info = probe(item.path, max_res=cfg.infer.max_res, target_fps=cfg.infer.target_fps, max_len=cfg.infer.max_len)
        directory = check_output_dir(item.output_dir(output_root))
        sizes = output_bytes_per_frame(cfg.output, info.height, info.width)
        check_disk_space(directory, info.estimated_frames, info.height, info.width, sizes)
        result = process_video(model, info, directory, cfg.infer, cfg.output)
    except Exception as exc:  # one broken video must not stop the dataset
        message = str(exc).splitlines()[0] if str(exc) else ""
        error = f"{type(exc).__name__}: {message}"
        outcome = VideoOutcome(str(item.path), FAILED, None, time.perf_counter() - started, error)
    else:
        outcome = VideoOutcome(str(item.path), DONE, result.frames, result.seconds, result=result)
    outcome.start_ms, outcome.end_ms = start_ms, int(time.time() * 1000)
    return outcome


# ---------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _init_worker(cfg: InferConfig, slots: Any, threads: int) -> None:
    """Build this worker's model once: its own GPU where there are several, else its share of CPU threads."""
    slot = slots.get()
    torch.set_num_threads(threads)
    if cfg.device.name in ("auto", "cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        device = f"cuda:{slot % torch.cuda.device_count()}"
        cfg = dataclasses.replace(cfg, device=dataclasses.replace(cfg.device, name=device))
    runtime = runtime_for(cfg)
    model, _ = load_model(cfg, runtime)
    _WORKER.update(cfg=cfg, model=model, runtime=runtime)


def _work(item: DatasetItem, output_root: Path) -> tuple[VideoOutcome, Any]:
    return process_item(_WORKER["cfg"], _WORKER["model"], item, output_root), _WORKER["runtime"]


def _in_process(cfg: InferConfig, items: list[DatasetItem], output_root: Path) -> Iterator[tuple[VideoOutcome, Any]]:
    runtime = runtime_for(cfg)
    model, _ = load_model(cfg, runtime)
    for item in items:
        yield process_item(cfg, model, item, output_root), runtime


def _in_workers(
    cfg: InferConfig, items: list[DatasetItem], output_root: Path, workers: int
) -> Iterator[tuple[VideoOutcome, Any]]:
    context = multiprocessing.get_context("spawn")  # no forked torch/CUDA state
    threads = max(torch.get_num_threads() // workers, 1)
    quiet = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, progress=False))
    with context.Manager() as manager:
        slots = manager.Queue()  # worker numbers, one taken by each worker as it starts
        for slot in range(workers):
            slots.put(slot)
        start = {"initializer": _init_worker, "initargs": (quiet, slots, threads)}
        with ProcessPoolExecutor(workers, mp_context=context, **start) as pool:
            futures: list[Future] = [pool.submit(_work, item, output_root) for item in items]
            for future in as_completed(futures):
                yield future.result()


# ---------------------------------------------------------------- the command
def check_workers(workers: int, device: torch.device) -> None:
    """Refuse more worker processes than the device can use (MPS: one GPU, each copy adds memory, not speed)."""
    most = facts(device).max_workers
    if most is not None and workers > most:
        raise ConfigError(
            f"infer.workers={workers} on {device.type}: each worker loads its own model onto the same GPU, "
            f"for no speed-up; use infer.workers={most}"
        )


def run_dataset(cfg: InferConfig) -> DatasetSummary:
    """Process every video of ``cfg.input`` not already done (this shard only); see the module docstring."""
    check_config(cfg)
    index, count = parse_shard(cfg.infer.shard)
    if cfg.infer.workers < 1:
        raise ConfigError(f"infer.workers={cfg.infer.workers} starts no process; use 1 or more")
    check_workers(cfg.infer.workers, resolve_device(cfg.device.name))
    items = select_shard(discover(cfg.input, cfg.input_glob), index, count)
    output_root = check_output_dir(resolve_path(cfg.output_dir))
    formats = enabled_formats(cfg.output)
    by_folder: dict[Path, list[str]] = {}
    for item in items:
        by_folder.setdefault(item.output_dir(output_root), []).append(item.path.stem)
    for directory, stems in by_folder.items():
        remove_stale(directory, stems)
    outcomes: dict[DatasetItem, VideoOutcome] = {}
    pending = []
    for item in items:
        if not cfg.output.overwrite and outputs_complete(item.output_dir(output_root), item.path.stem, formats):
            outcomes[item] = VideoOutcome(str(item.path), SKIPPED)
        else:
            pending.append(item)
    name = "summary.csv" if count == 1 else f"summary-shard-{index}-of-{count}.csv"
    summary = DatasetSummary([], output_root / name)
    tracker = _Tracker(cfg) if pending and cfg.mlflow.enabled else None
    if pending:
        runtime_for(cfg)
        if tracker is not None:
            tracker.start()
        try:
            _process(cfg, pending, output_root, outcomes, tracker, len(items))
        except BaseException:
            if tracker is not None:
                tracker.finish(None)
            raise
    summary.outcomes = [outcomes[item] for item in items]
    write_summary(summary)
    if tracker is not None:
        tracker.finish(summary)
    return summary


def _process(
    cfg: InferConfig,
    pending: list[DatasetItem],
    output_root: Path,
    outcomes: dict[DatasetItem, VideoOutcome],
    tracker: Optional[_Tracker],
    total: int,
) -> None:
    """Process ``pending`` (in this process or in workers) into ``outcomes``, with a bar over the videos."""
    workers = min(cfg.infer.workers, len(pending))
    stream = _in_process(cfg, pending, output_root) if workers == 1 else _in_workers(cfg, pending, output_root, workers)
    by_input = {str(item.path): item for item in pending}
    failed = 0
    with tqdm(total=total, initial=len(outcomes), unit="video", desc="videos", disable=not cfg.output.progress) as bar:
        for outcome, runtime in stream:
            outcomes[by_input[outcome.input]] = outcome
            if outcome.status == FAILED:
                failed += 1
                logger.error("%s: failed: %s", outcome.input, outcome.error)
            if tracker is not None:
                tracker.log(outcome, runtime)
            bar.update(1)
            bar.set_postfix(failed=failed)


def write_summary(summary: DatasetSummary) -> None:
    with open(summary.path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        for outcome in summary.outcomes:
            writer.writerow(outcome.row())


class _Tracker:
    """MLflow runs of a dataset: one per processed or failed video (with its true start and end), nested under
    the multirun's parent run (cluster jobs, see :class:`vda.tracking.sweep.SweepRun`) or, in a plain run, under
    a parent run of its own."""

    def __init__(self, cfg: InferConfig) -> None:
        self.cfg = cfg
        self.parent: Optional[str] = None
        self.own = False
        self.overrides = hydra_overrides()

    def start(self) -> None:
        """Open the store (a bad one refuses the dataset before any video) and the parent run."""
        self.store = open_store(self.cfg.mlflow, tracked.INFER_VIEW)
        self.parent = sweep_parent_run_id()
        if self.parent is None:
            tags = {T.KIND: DATASET_KIND, "input": self.cfg.input, T.OVERRIDES: self.overrides}
            self.parent = client.create_run(self.store, f"dataset {self.cfg.input}", tags, None, client.now_ms())
            self.own = True

    def log(self, outcome: VideoOutcome, runtime: Any) -> None:
        stem = Path(outcome.input).stem
        record = runs.RunRecord(
            name=tracked.run_name(stem, self.cfg, runtime),
            status=client.FINISHED if outcome.result is not None else client.FAILED,
            tags={**tracked.run_tags(self.cfg, runtime, self.overrides), "input": outcome.input,
                  T.STATUS: outcome.status, T.STATUS_REASON: outcome.error},
            params={**runs.config_params(self.cfg), **tracked.resolved_params(self.cfg, runtime)},
            start_ms=outcome.start_ms,
            end_ms=outcome.end_ms,
            texts={"config.yaml": runs.config_yaml(self.cfg)},
        )
        if outcome.result is not None:
            record.metrics = tracked.result_metrics(outcome.result)
            record.tags.update(tracked.result_tags(outcome.result))
            preview = OUTPUTS.get("vis").name_for(outcome.result.input.stem)
            record.artifacts = [p for p in outcome.result.outputs if p.name == preview]
        runs.write(self.store, record, self.parent)

    def finish(self, summary: Optional[DatasetSummary]) -> None:
        """End the own parent run with the counts (``summary`` None: interrupted); say where the runs are."""
        if self.own and summary is None:
            client.end_run(self.store, self.parent, client.KILLED)
            return
        if self.own:
            client.set_tags(self.store, self.parent, {f"videos.{status}": summary.count(status) for status in (DONE, SKIPPED, FAILED)})
            client.end_run(self.store, self.parent, client.FAILED if summary.failed else client.FINISHED)
        if summary is not None:
            summary.where = where_logged(self.store, runs_url(self.store, tracked.INFER_VIEW, self.parent))


__all__ = [
    "DatasetItem",
    "DatasetSummary",
    "VIDEO_SUFFIXES",
    "VideoOutcome",
    "discover",
    "is_dataset",
    "outputs_complete",
    "parse_shard",
    "process_item",
    "remove_stale",
    "run_dataset",
    "select_shard",
    "write_summary",
]
