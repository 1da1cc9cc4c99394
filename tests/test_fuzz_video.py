"""Fuzzing the decode path of run_infer.py (probe + VideoReader) with mutated copies of a tiny valid video.

Each case must end cleanly: RGB frames of the probed size for what decoded, or one :class:`VideoError`;
never another exception, a hang or a crash of the interpreter. Cases run in worker processes (this file
run as a script), each under an alarm, so a hang or a crash is caught and named; a sample also goes
through the whole offline engine with a tiny seeded model. Results: README, "When something goes wrong".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = 320
KINDS = ("bitflip", "truncate", "zero_run", "header")
ENGINE_CASES = 5  # per worker: the first cases that decode also run the offline engine (10 in all)
CASE_SECONDS = 20  # alarm per decode; the slowest case decodes in well under a second
ENGINE_SECONDS = 120  # alarm per engine run (one 32-frame window of vits on a shared CPU)
WORKERS = 2


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
    sys.path.insert(0, str(Path(__file__).parent))
    from vda.video.synthetic import synthetic_frames, write_video

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


# ---------------------------------------------------------------- worker (this file run as a script)
class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout()


def run_case(case: dict, engine_model=None) -> dict:
    from vda.errors import VideoError
    from vda.video.reader import VideoReader, probe

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
            import torch

            from vda.depth import WindowedDepth

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


def worker(cases_file: str, engine_cases: str) -> None:
    """Run the cases listed in ``cases_file``; one JSON line when a case starts and one when it ends."""
    import logging

    logging.disable(logging.WARNING)
    from vda import build_model

    cases = json.loads(Path(cases_file).read_text())
    engine_left = int(engine_cases)
    model = None
    if engine_left:
        import torch

        torch.set_num_threads(1)  # one core per worker
        model = build_model("vits", checkpoint="random", seed=0)
    signal.signal(signal.SIGALRM, _alarm)
    for case in cases:
        print(json.dumps({"start": case["index"]}), flush=True)
        signal.alarm(CASE_SECONDS)
        result = run_case(case)
        if engine_left and result.get("frames"):  # again, through the engine
            signal.alarm(ENGINE_SECONDS)
            result = run_case(case, model)
            engine_left -= 1
        signal.alarm(0)
        print(json.dumps({"index": case["index"], **result}), flush=True)


# ---------------------------------------------------------------- parent
def run_shard(cases: list[dict], directory: Path, shard: int) -> list[dict]:
    """Run ``cases`` in a worker; a case during which the worker dies is a crash, and the rest restart."""
    results, todo, engine_cases = [], list(cases), ENGINE_CASES
    by_index = {case["index"]: case for case in cases}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while todo:
        cases_file = directory / f"shard{shard}.json"
        cases_file.write_text(json.dumps(todo))
        worker_proc = subprocess.Popen(
            [sys.executable, __file__, cases_file, str(engine_cases)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        started = None
        for line in worker_proc.stdout:
            message = json.loads(line)
            if "start" in message:
                started = message["start"]
            else:
                results.append({**by_index[message["index"]], **message})
                started = None
        worker_proc.wait()
        done = {r["index"] for r in results}
        if started is not None:  # the interpreter died inside this case
            results.append({**by_index[started], "outcome": "crash", "detail": f"exit status {worker_proc.returncode}"})
            done.add(started)
        elif worker_proc.returncode != 0:
            raise RuntimeError(f"fuzz worker failed outside any case (exit status {worker_proc.returncode})")
        todo = [case for case in todo if case["index"] not in done]
        engine_cases -= sum(1 for r in results if "engine_result" in r) - (ENGINE_CASES - engine_cases)
    return results


def run_fuzz(directory: Path) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    cases = make_cases(directory)
    shards = [cases[i::WORKERS] for i in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        parts = pool.map(run_shard, shards, [directory] * WORKERS, range(WORKERS))
    return sorted((r for part in parts for r in part), key=lambda r: r["index"])


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


def test_fuzzed_videos_end_cleanly(tmp_path):
    started = time.perf_counter()
    results = run_fuzz(tmp_path)
    report = summary(results)
    print(json.dumps(report, indent=1), f"{time.perf_counter() - started:.1f} s")
    assert len(results) == CASES
    bad = [r for r in results if r["outcome"] not in ("frames", "video_error")]
    assert not bad, bad[:5]
    assert report["zero_frame_cases"] == 0  # what probe decodes, the reader decodes too
    engine = [r["engine_result"] for r in results if "engine_result" in r]
    assert engine == ["ok"] * WORKERS * ENGINE_CASES, engine
    # the mutations must reach both outcomes, or the fuzzing proves nothing
    assert report["outcomes"]["frames"] >= 30 and report["outcomes"]["video_error"] >= 30


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
