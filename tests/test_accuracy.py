"""``scenario=accuracy`` and :mod:`vda.evaluation` on tiny datasets written here in the published layout.

Expected numbers come from the plain numpy implementation of the published formulas below (stacked frames,
``np.linalg.lstsq``, a half-pixel bilinear resize written out, a point-by-point TAE), not from vda.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from PIL import Image

from vda.bench import report
from vda.bench.command import BenchJobFailed, check_single_run, run_job
from vda.bench.config import register_configs
from vda.bench.recorder import BENCH_VIEW, job_record
from vda.tracking import runs
from vda.tracking.store import open_store
from vda.tracking.tags import KIND as KIND_TAG
from vda.bench.result import Status
from vda.bench.scenarios import accuracy
from vda.config import MlflowConfig, to_object
from vda.evaluation import DATASETS, SavedPredictions, evaluate, plan
from vda.evaluation.tae import project_depth

CONF = Path(__file__).resolve().parent.parent / "conf"
BASE = ["encoder=vits", "device=cpu", "job.isolate=false", "job.threads=1"]


# ----------------------------------------------------------------------------- the published formulas, plainly


def ref_resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear with half-pixel centres and edge clamping (OpenCV INTER_LINEAR), in float64."""

    def axis(n_out: int, n_in: int):
        x = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        x0 = np.floor(x).astype(int)
        frac = x - x0
        return np.minimum(x0, n_in - 1), np.minimum(x0 + 1, n_in - 1), frac

    if a.shape == (height, width):
        return a.astype(np.float64)
    y0, y1, fy = axis(height, a.shape[0])
    x0, x1, fx = axis(width, a.shape[1])
    a = a.astype(np.float64)
    rows = a[y0] * (1 - fy)[:, None] + a[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def ref_align(preds: list[np.ndarray], gts: list[np.ndarray], cap: float) -> list[np.ndarray]:
    """One lstsq fit over the stacked sequence; the aligned depth of every frame."""
    P = np.clip(np.stack(preds), 1e-3, None)
    G = np.stack(gts)
    valid = (G > 1e-3) & (G < cap)
    A = np.stack([P[valid].astype(np.float64), np.ones(valid.sum())], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(A, 1.0 / (G[valid].astype(np.float64) + 1e-8), rcond=None)
    return list(np.clip(1.0 / np.clip(scale * P + shift, 1e-3, None), 1e-3, cap))


def ref_depth_scores(sequences: list[tuple[list[np.ndarray], list[np.ndarray]]], cap: float) -> dict[str, float]:
    """``sequences``: (predictions at the cropped GT size, cropped GTs) of the frames to score."""
    per_sequence = []
    for preds, gts in sequences:
        frames = []
        for depth, gt in zip(ref_align(preds, gts, cap), gts):
            valid = (gt > 1e-3) & (gt < cap)
            n = valid.sum()
            if n == 0:
                continue
            d, g = depth[valid], gt[valid]
            frames.append(
                (
                    np.sum(np.abs(d - g) / g) / n,
                    math.sqrt(np.sum((d - g) ** 2) / n),
                    np.sum(np.maximum(d / g, g / d) < 1.25) / n,
                )
            )
        per_sequence.append(np.mean(frames, axis=0))
    abs_rel, rmse, delta1 = np.mean(per_sequence, axis=0)
    return {"abs_rel": abs_rel, "rmse": rmse, "delta1": delta1}


def ref_project(depth: np.ndarray, T: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Point by point, in raster order, each write replacing the previous one."""
    height, width = depth.shape
    out = np.zeros_like(depth)
    for v in range(height):
        for u in range(width):
            z = depth[v, u]
            p = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
            q = T[:3, :3] @ p + T[:3, 3]
            if q[2] == 0:
                continue
            x, y = np.round(q[0] * K[0, 0] / q[2] + K[0, 2]), np.round(q[1] * K[1, 1] / q[2] + K[1, 2])
            if 0 <= x < width and 0 <= y < height:
                out[int(y), int(x)] = q[2]
    return out


def ref_tae(depths: list[np.ndarray], poses: list[np.ndarray], K: np.ndarray) -> float:
    total = 0.0
    for i in range(len(depths) - 1):
        forward = np.linalg.inv(poses[i + 1]) @ poses[i]
        for src, dst, T in ((depths[i], depths[i + 1], forward), (depths[i + 1], depths[i], np.linalg.inv(forward))):
            proj = ref_project(src, T, K)
            both = (proj > 0) & (dst > 0)
            total += np.mean(np.abs(dst[both] - proj[both]) / dst[both]) if both.any() else 0.0
    return total / (2 * (len(depths) - 1)) * 100


# ----------------------------------------------------------------------------- datasets in the published layout


def write_dataset(root: Path, dataset: str, scenes: dict, factor: float, index_name: str | None = None) -> Path:
    """``scenes``: {name: [{"image": uint8 HxWx3, "gt": depth in metres, ["K", "pose"]}]} in index order."""
    folder = root / dataset
    listing = []
    for name, frames in scenes.items():
        entries = []
        for i, frame in enumerate(frames):
            image, gt = f"rgb/{name}/{i:04d}.png", f"depth/{name}/{i:04d}.png"
            for rel, array in ((image, frame["image"]), (gt, np.round(frame["gt"] * factor).astype(np.uint16))):
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(folder / rel)
            entry = {"image": image, "gt_depth": gt, "factor": factor}
            entry.update({k: np.asarray(frame[k]).tolist() for k in ("K", "pose") if k in frame})
            entries.append(entry)
        listing.append({name: entries})
    index = folder / (index_name or DATASETS.get(dataset).protocols["short"].index)
    index.write_text(json.dumps({dataset: listing}))
    return index


def stored_gt(frame: dict, factor: float) -> np.ndarray:
    return np.round(frame["gt"] * factor).astype(np.uint16) / factor


def save_prediction(pred_root: Path, dataset: str, scene: str, i: int, array: np.ndarray) -> None:
    path = pred_root / dataset / "rgb" / scene / f"{i:04d}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array.astype(np.float32))


# ----------------------------------------------------------------------------- jobs


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def bench(store):
    """``bench(*overrides)`` -> (outcome, client): one in-process job in the module's store."""
    register_configs()

    def run(*overrides, parent=None):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("bench", overrides=[*BASE, f"mlflow.tracking_uri={store}", "scenario=accuracy", *overrides])
        cfg = to_object(cfg)
        if parent is None:
            return run_job(cfg), MlflowClient(tracking_uri=store)
        from vda.bench.launcher import launch

        mlflow.set_tracking_uri(store)
        return runs.write(open_store(cfg.mlflow, BENCH_VIEW), job_record(cfg, launch(cfg)), parent), MlflowClient(tracking_uri=store)

    yield run
    mlflow.set_tracking_uri(None)


def artifact_text(client: MlflowClient, run_id: str, name: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, name, str(tmp_path))).read_text()


# ----------------------------------------------------------------------------- depth protocols


def depth_case(tmp_path: Path, dataset: str, gt_hw: tuple[int, int], pred_hw: tuple[int, int]):
    """Three scenes listed out of alphabetical order; GT with zeros and depths beyond the cap; predictions at
    ``pred_hw`` with negative values; one NaN frame and one missing prediction."""
    rng = np.random.default_rng(7)
    cap = DATASETS.get(dataset).max_depth
    factor = 1000.0 if cap <= 10 else 100.0
    scenes, preds = {}, {}
    for s, name in enumerate(["zeta", "alpha", "mid"]):
        frames, scene_preds = [], []
        for i in range(4 + s):
            gt = rng.uniform(0.3 * cap, 1.2 * cap, gt_hw)  # part beyond the cap
            gt[rng.random(gt_hw) < 0.1] = 0.0  # no measurement
            image = rng.integers(0, 255, (*gt_hw, 3), dtype=np.uint8)
            frames.append({"image": image, "gt": gt})
            disparity = ref_resize(1.0 / np.maximum(gt, 0.5), *pred_hw)
            pred = 3.0 * disparity + 0.2 + rng.normal(0, 0.02, pred_hw) - 0.25  # some values < 0
            scene_preds.append(pred.astype(np.float32))
        scenes[name], preds[name] = frames, scene_preds
    preds["alpha"][1] = np.full(pred_hw, np.nan, np.float32)
    preds["alpha"][1][0, 0] = 1.0
    root = tmp_path / "bench"
    write_dataset(root, dataset, scenes, factor)
    pred_root = tmp_path / "pred"
    for name, scene_preds in preds.items():
        for i, pred in enumerate(scene_preds):
            if (name, i) != ("mid", 2):  # missing
                save_prediction(pred_root, dataset, name, i, pred)
    rows, cols = DATASETS.get(dataset).crop_slices()
    expected_inputs = []
    for name, frames in scenes.items():
        kept = [
            (ref_resize(preds[name][i], *stored_gt(f, factor)[rows, cols].shape), stored_gt(f, factor)[rows, cols])
            for i, f in enumerate(frames)
            if (name, i) not in (("mid", 2), ("alpha", 1))
        ]
        expected_inputs.append(([p.astype(np.float32) for p, _ in kept], [g for _, g in kept]))
    return root, pred_root, ref_depth_scores(expected_inputs, cap)


@pytest.mark.parametrize(
    "dataset, gt_hw, pred_hw",
    [("sintel", (20, 28), (13, 17)), ("scannet", (40, 56), (40, 56)), ("bonn", (24, 32), (48, 64))],
)
def test_saved_predictions_score_as_the_published_formulas(tmp_path, dataset, gt_hw, pred_hw):
    root, pred_root, expected = depth_case(tmp_path, dataset, gt_hw, pred_hw)
    chosen = plan(dataset, "short", root, None, images=False)
    result = evaluate(chosen, SavedPredictions(pred_root, dataset))
    metrics = result.metrics()
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert metrics["missing_predictions"] == 1 and metrics["nonfinite_frames"] == 1
    assert metrics["sequences"] == 3 and metrics["frames"] == 4 + 5 + 6 - 2
    assert [s.scene for s in result.sequences] == ["zeta", "alpha", "mid"]  # the index's order


def test_the_job_logs_scores_counts_and_a_per_sequence_csv(tmp_path, bench):
    root, pred_root, expected = depth_case(tmp_path, "sintel", (20, 28), (13, 17))
    outcome, client = bench(f"scenario.root={root}", f"scenario.predictions={pred_root}")
    assert outcome.result.status is Status.ok, outcome.result.reason
    run = client.get_run(outcome.run_id)
    m = run.data.metrics
    assert m["abs_rel"] == pytest.approx(expected["abs_rel"], rel=1e-6)
    assert m["delta1"] == pytest.approx(expected["delta1"], rel=1e-6)
    assert (m["missing_predictions"], m["nonfinite_frames"], m["collapsed_frames"]) == (1, 1, 0)
    assert "throughput_fps" not in m  # nothing was inferred
    assert run.data.tags["vda.weights"] == f"predictions:{pred_root}"
    rows = list(csv.DictReader(io.StringIO(artifact_text(client, outcome.run_id, "sequences.csv", tmp_path))))
    assert [r["scene"] for r in rows] == ["zeta", "alpha", "mid"]
    assert [int(r["frames_scored"]) for r in rows] == [4, 4, 5]
    assert float(np.mean([float(r["abs_rel"]) for r in rows])) == pytest.approx(expected["abs_rel"], rel=1e-9)


def test_a_black_frame_is_counted_as_collapsed_and_still_scored(tmp_path):
    rng = np.random.default_rng(3)
    gts = [rng.uniform(1, 9, (12, 16)) for _ in range(3)]
    frames = [{"image": np.zeros((12, 16, 3), np.uint8), "gt": g} for g in gts]
    root = tmp_path / "bench"
    write_dataset(root, "bonn", {"s": frames}, 1000.0)
    preds = [1.0 / g for g in gts]
    preds[1] = np.zeros((12, 16))
    for i, p in enumerate(preds):
        save_prediction(tmp_path / "pred", "bonn", "s", i, p)
    metrics = evaluate(plan("bonn", "short", root, None, False), SavedPredictions(tmp_path / "pred", "bonn")).metrics()
    gt_stored = [stored_gt(f, 1000.0) for f in frames]
    expected = ref_depth_scores([([p.astype(np.float32) for p in preds], gt_stored)], 10.0)
    assert metrics["collapsed_frames"] == 1 and metrics["frames"] == 3
    assert metrics["abs_rel"] == pytest.approx(expected["abs_rel"], rel=1e-6)


# ----------------------------------------------------------------------------- TAE


def plane_depth(K: np.ndarray, hw: tuple[int, int], normal: np.ndarray, offset: float) -> np.ndarray:
    """Depth of the plane ``normal . P = offset`` seen by a camera K at the origin."""
    v, u = np.mgrid[0 : hw[0], 0 : hw[1]].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return offset / (rays @ normal)


def rigid_motion_scene(count: int, full_hw=(40, 56)):
    """A tilted plane seen by a camera that turns and moves; GT exact on the cropped area (where TAE looks)."""
    crop_rows, crop_cols = DATASETS.get("scannet").crop_slices()
    K = np.array([[40.0, 0, 17.0], [0, 40.0, 12.0], [0, 0, 1]])  # applies to the cropped frame, as upstream uses it
    cropped_hw = np.zeros(full_hw)[crop_rows, crop_cols].shape
    normal, offset = np.array([0.15, -0.1, 1.0]), 3.0  # world plane
    frames = []
    for i in range(count):
        angle = 0.004 * i
        R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = R, [0.01 * i, 0.005 * i, 0.02 * i]  # camera-to-world
        # the plane in this camera: n_c = R^T n, d_c = d - n . t
        depth = plane_depth(K, cropped_hw, R.T @ normal, offset - normal @ pose[:3, 3])
        gt = np.zeros(full_hw)
        gt[crop_rows, crop_cols] = depth
        frames.append({"image": np.zeros((*full_hw, 3), np.uint8), "gt": gt, "K": K, "pose": pose})
    return frames, K


def test_tae_of_an_exact_prediction_on_a_rigid_motion_is_about_zero(tmp_path):
    frames, K = rigid_motion_scene(14)
    root = tmp_path / "bench"
    write_dataset(root, "scannet", {"turn": frames}, 1000.0, "scannet_video_tae.json")
    crop_rows, crop_cols = DATASETS.get("scannet").crop_slices()
    results = {}
    for name, flicker in (("exact", 0.0), ("flickering", 0.05)):
        preds = []
        for i, f in enumerate(frames):
            disparity = 1.0 / np.maximum(stored_gt(f, 1000.0), 1e-3) * (1 + flicker * (-1) ** i)
            preds.append(disparity.astype(np.float32))
            save_prediction(tmp_path / name, "scannet", "turn", i, disparity)
        chosen = plan("scannet", "tae", root, None, images=False)
        results[name] = evaluate(chosen, SavedPredictions(tmp_path / name, "scannet")).metrics()["tae"]
        scored = slice(10, 180)
        gts = [stored_gt(f, 1000.0)[crop_rows, crop_cols] for f in frames[scored]]
        depths = ref_align([p[crop_rows, crop_cols] for p in preds[scored]], gts, 10.0)
        assert results[name] == pytest.approx(ref_tae(depths, [f["pose"] for f in frames[scored]], K), rel=1e-9, abs=1e-12)
    assert results["exact"] < 0.1  # percent: only the rounding to whole pixels and the millimetre GT remain
    assert results["flickering"] > 20 * results["exact"]


def test_tae_collisions_keep_the_last_point_in_raster_order():
    K = np.array([[1.0, 0, 1.5], [0, 1.0, 0], [0, 0, 1]])
    depth = np.array([[1.0, 2.0, 1.0, 2.0]])
    # moved 9 units back, the four points land on pixels 1, 1, 2, 2 at depths 10, 11, 10, 11
    projected = project_depth(depth, np.eye(3), np.array([0.0, 0.0, 9.0]), K)
    np.testing.assert_array_equal(projected, [[0.0, 11.0, 11.0, 0.0]])
    np.testing.assert_array_equal(projected, ref_project(depth, np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 9.0], [0, 0, 0, 1]]), K))


# ----------------------------------------------------------------------------- bad input


def small_sintel(root: Path) -> Path:
    rng = np.random.default_rng(1)
    frames = [{"image": rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), "gt": rng.uniform(1, 60, (12, 16))} for _ in range(3)]
    return write_dataset(root, "sintel", {"a": frames}, 100.0)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_root", "set scenario.root"),
        ("missing_root", "is not a folder"),
        ("missing_json", "does not exist (scenario.json"),
        ("missing_file", "which does not exist"),
        ("unknown_dataset", "unknown scenario.dataset 'kitty'"),
        ("unknown_protocol", "unknown scenario.protocol 'medium'"),
        ("protocol_not_offered", "has no long protocol"),
        ("tae_without_cameras", "needs K and pose"),
        ("no_prediction", "none of the 3 scored frames has a prediction"),
        ("input_size", "scenario.input_size=7 is below the patch size"),
    ],
)
def test_bad_input_is_one_line_before_any_inference(tmp_path, bench, monkeypatch, case, expected):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(accuracy, "build_for", no_model)
    root = tmp_path / "bench"
    index = small_sintel(root)
    overrides = {
        "no_root": [],
        "missing_root": [f"scenario.root={tmp_path / 'nowhere'}"],
        "missing_json": [f"scenario.root={root}", f"scenario.json={tmp_path / 'none.json'}"],
        "missing_file": [f"scenario.root={root}"],
        "unknown_dataset": [f"scenario.root={root}", "scenario.dataset=kitty"],
        "unknown_protocol": [f"scenario.root={root}", "scenario.protocol=medium"],
        "protocol_not_offered": [f"scenario.root={root}", "scenario.protocol=long"],
        "tae_without_cameras": [f"scenario.json={index}", "scenario.dataset=scannet", "scenario.protocol=tae"],
        "no_prediction": [f"scenario.root={root}", f"scenario.predictions={tmp_path / 'empty'}"],
        "input_size": [f"scenario.root={root}", "scenario.input_size=7"],
    }[case]
    if case == "missing_file":
        (root / "sintel" / "depth" / "a" / "0001.png").unlink()
    if case == "tae_without_cameras":
        index.write_text(index.read_text().replace('"sintel"', '"scannet"'))
    outcome, _ = bench(*overrides)
    assert outcome.result.status is Status.error
    with pytest.raises(BenchJobFailed) as failure:
        check_single_run(outcome)
    message = str(failure.value)
    assert expected in message and "\n" not in message


def test_the_official_weights_are_this_scenarios_default_and_random_still_works():
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        default = to_object(compose("bench", overrides=["scenario=accuracy"]))
        chosen = to_object(compose("bench", overrides=["scenario=accuracy", "model.checkpoint=random"]))
        forward = to_object(compose("bench", overrides=["scenario=forward"]))
    assert (default.model.checkpoint, chosen.model.checkpoint, forward.model.checkpoint) == ("auto", "random", "random")


# ----------------------------------------------------------------------------- inference, sweep and report


@pytest.fixture(scope="module")
def tiny_sintel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sintel")
    rng = np.random.default_rng(5)
    scenes = {}
    for name in ("b", "a"):
        scenes[name] = [
            {"image": rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), "gt": rng.uniform(1, 60, (24, 32))} for _ in range(4)
        ]
    write_dataset(root, "sintel", scenes, 100.0)
    return root


def test_a_two_precision_sweep_gives_the_accuracy_table_and_chart(tmp_path, bench, store, tiny_sintel, random_checkpoint):
    client = MlflowClient(tracking_uri=store)
    mlflow.set_tracking_uri(store)
    experiment = open_store(MlflowConfig(tracking_uri=store, experiment="vda-bench"), BENCH_VIEW).experiment_id
    sweep = client.create_run(experiment, tags={KIND_TAG: "sweep"}).info.run_id
    saved = tmp_path / "saved"
    common = [f"scenario.root={tiny_sintel}", "scenario.input_size=28", f"model.checkpoint={random_checkpoint}"]
    run_ids = [
        bench(*common, "precision=fp32", f"scenario.save_predictions={saved}", parent=sweep)[0],
        bench(*common, "precision=bf16", parent=sweep)[0],
    ]
    jobs = [client.get_run(run_id) for run_id in run_ids]
    for job in jobs:
        assert job.data.tags["status"] == "ok", job.data.tags["status_reason"]
        assert job.data.tags["vda.weights"] == str(random_checkpoint)
        assert job.data.metrics["frames"] == 8 and job.data.metrics["throughput_fps"] > 0
    # the saved fp32 predictions, scored again from disk, give the same numbers
    assert sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*.npy"))[:2] == ["sintel/rgb/a/0000.npy", "sintel/rgb/a/0001.npy"]
    again, _ = bench(f"scenario.root={tiny_sintel}", f"scenario.predictions={saved}")
    assert again.result.metrics["abs_rel"] == pytest.approx(jobs[0].data.metrics["abs_rel"], rel=1e-9)
    rows = report.load_rows(store, "vda-bench", sweep)
    path = report.write_report(rows, tmp_path / "report", "test")
    text = path.read_text()
    table = text.split("## Accuracy")[1].split("\n\n")[1].splitlines()
    assert len(table) == 2 + 2 and all("sintel short offline @ 28" in line for line in table[2:])
    assert {line.split("|")[3].strip() for line in table[2:]} == {"fp32", "bf16"}
    assert (tmp_path / "report" / "accuracy_speed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stream_mode_scores_the_streaming_rule(bench, tiny_sintel, random_checkpoint):
    outcome, _ = bench(
        f"scenario.root={tiny_sintel}", "scenario.input_size=28", "scenario.mode=stream", f"model.checkpoint={random_checkpoint}"
    )
    assert outcome.result.status is Status.ok, outcome.result.reason
    assert outcome.result.metrics["frames"] == 8 and 0 <= outcome.result.metrics["delta1"] <= 1


def test_inference_reads_a_scene_lazily(tmp_path, monkeypatch, tiny_model):
    """The engine gets the images one window ahead, not the whole scene at once (memory stays bounded)."""
    from vda.evaluation import EnginePredictions
    from vda.evaluation import predictions as source_module
    from vda.depth.engine import WindowedDepth

    rng = np.random.default_rng(9)
    frames = [{"image": rng.integers(0, 255, (16, 20, 3), dtype=np.uint8), "gt": rng.uniform(1, 60, (16, 20))} for _ in range(40)]
    write_dataset(tmp_path, "sintel", {"long": frames}, 100.0)
    reads = []
    real = source_module.load_image
    monkeypatch.setattr(source_module, "load_image", lambda path: reads.append(path) or real(path))
    chosen = plan("sintel", "short", tmp_path, None, images=True)
    source = EnginePredictions(WindowedDepth(tiny_model, 28), "sintel")
    stream = source(chosen.scenes[0], chosen.scored(chosen.scenes[0]))
    first = next(stream)
    assert first.shape == (16, 20) and len(reads) == 32  # one window read, 8 frames still on disk
    assert len(list(stream)) == 39 and len(reads) == 40 and source.frames == 40
