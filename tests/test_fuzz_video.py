"""Fuzzing the decode path of run_infer.py (probe + VideoReader) with mutated copies of a tiny valid video.

Each case must end cleanly: RGB frames of the probed size for what decoded, or one :class:`VideoError`;
never another exception or a hang (each case runs under an alarm, so a hang is caught and named); a crash of
the interpreter ends the test run itself. The cases decode in this process; the first that decode also go
through the whole offline engine with a tiny seeded model. Results: README, "When something goes wrong".
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from vda.errors import VideoError
from vda.depth import WindowedDepth
from vda.video.reader import VideoReader, probe
from vda.video.synthetic import synthetic_frames, write_video

CASES = 320
KINDS = ("bitflip", "truncate", "zero_run", "header")
ENGINE_CASES = 10  # the first cases that decode also run the offline engine
CASE_SECONDS = 20  # alarm per decode; the slowest case decodes in well under a second
ENGINE_SECONDS = 120  # alarm per engine run (one 32-frame window of vits on a shared CPU)


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One seeded mutation of ``data``."""
    buf = bytearray(data)
    if kind == "bitflip":
        for position in rng.integers(0, len(buf), rng.integers(1, 33)):
            buf[position] ^= 1 << int(rng.integers(0, 8))
    elif kind == "truncate":
        del buf[int(rng.integers(0, len(buf))) :]
    elif kind == "zero_run":
        start = int(rng.integers(0, len(buf)))
        end = min(start + int(rng.integers(1, 513)), len(buf))
        buf[start:end] = bytes(end - start)
    elif kind == "header":  # container headers: mp4 ftyp/moov (moved to the front), Matroska EBML/tracks
        for position in rng.integers(0, min(len(buf), 600), rng.integers(1, 9)):
            buf[position] = int(rng.integers(0, 256))
    return bytes(buf)


def make_cases(directory: Path) -> list[dict]:
    """Two base clips (mp4 with the index in front, mkv), ``CASES`` seeded mutations alternating over them."""
    bases = []
    # bitexact: no muxer version string, date or random segment UID, so the cases are the same on every run
    exact = {"fflags": "+bitexact"}
    for container, options in (("mp4", {"movflags": "faststart", **exact}), ("mkv", exact)):
        path = directory / f"base.{container}"
        write_video(path, synthetic_frames(12, 32, 48, seed=7), options=options)
        bases.append(path)
    cases = []
    for index in range(CASES):
        base = bases[index % 2]
        kind = KINDS[(index // 2) % len(KINDS)]
        path = directory / f"case_{index:03d}_{kind}{base.suffix}"
        path.write_bytes(mutate(base.read_bytes(), kind, np.random.default_rng(index)))
        cases.append({"index": index, "kind": kind, "path": str(path)})
    return cases


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


def run_case(case: dict, engine_model=None) -> dict:
    try:
        info = probe(case["path"])
        reader = VideoReader(info)
        frames = []
        for frame in reader:
            if frame.shape != (info.height, info.width, 3) or frame.dtype != np.uint8:
                return {"outcome": "bad_frame", "detail": f"{frame.dtype} {frame.shape}"}
            frames.append(frame)
        result = {"outcome": "frames", "frames": len(frames), "skipped": reader.frames_skipped}
        if engine_model is not None:
            depth = list(WindowedDepth(engine_model, input_size=28).run(iter(frames)))
            maps = sum(len(d) for d in depth)
            finite = all(bool(torch.isfinite(d).all()) for d in depth)
            result["engine_result"] = "ok" if maps == len(frames) and finite else f"{maps} maps, finite={finite}"
        return result
    except VideoError as exc:
        if "\n" in str(exc):
            return {"outcome": "bad_error", "detail": str(exc)}
        return {"outcome": "video_error", "detail": str(exc)[:200]}
    except CaseTimeout:
        return {"outcome": "hang"}
    except Exception as exc:  # noqa: BLE001 - anything else is the finding
        return {"outcome": "exception", "detail": f"{type(exc).__name__}: {exc}"[:300]}


def run_fuzz(directory: Path, model) -> list[dict]:
    """Every case in this process, each under an alarm; the first ``ENGINE_CASES`` that decode run the engine too."""
    results, engine_left = [], ENGINE_CASES
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for case in make_cases(directory):
            signal.alarm(CASE_SECONDS)
            result = run_case(case)
            if engine_left and result.get("frames"):  # again, through the engine
                signal.alarm(ENGINE_SECONDS)
                result = run_case(case, model)
                engine_left -= 1
            signal.alarm(0)
            results.append({**case, **result})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return results


def error_kind(message: str) -> str:
    """The reason of a VideoError without the file name: 'cannot read ... as a video' -> 'cannot read'."""
    words = message.split()
    return " ".join(words[:2]) if not message.startswith("/") else " ".join(words[1:6])


def summary(results: list[dict]) -> dict:
    by_kind = {kind: dict(Counter(r["outcome"] for r in results if r["kind"] == kind)) for kind in KINDS}
    return {
        "cases": len(results),
        "outcomes": dict(Counter(r["outcome"] for r in results)),
        "by_kind": by_kind,
        "frames_skipped_cases": sum(1 for r in results if r.get("skipped")),
        "zero_frame_cases": sum(1 for r in results if r.get("frames") == 0),  # probe decoded, the reader did not
        "engine": dict(Counter(r["engine_result"] for r in results if "engine_result" in r)),
        "errors": dict(Counter(error_kind(r["detail"]) for r in results if r["outcome"] == "video_error")),
    }


def test_fuzzed_videos_end_cleanly(tmp_path, tiny_model):
    started = time.perf_counter()
    results = run_fuzz(tmp_path, tiny_model)
    report = summary(results)
    print(json.dumps(report, indent=1), f"{time.perf_counter() - started:.1f} s")
    assert len(results) == CASES
    bad = [r for r in results if r["outcome"] not in ("frames", "video_error")]
    assert not bad, bad[:5]
    assert report["zero_frame_cases"] == 0  # what probe decodes, the reader decodes too
    engine = [r["engine_result"] for r in results if "engine_result" in r]
    assert engine == ["ok"] * ENGINE_CASES, engine
    # the mutations must reach both outcomes, or the fuzzing proves nothing
    assert report["outcomes"]["frames"] >= 30 and report["outcomes"]["video_error"] >= 30

