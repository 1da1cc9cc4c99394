"""What ``run_infer.py`` logs to MLflow: its experiment's view, run names and tags, a result's metrics, and the
parent run of a multirun (the writing itself is :mod:`vda.tracking`).

A video's run is named ``clip · sdpa fp32`` (`` openvino`` appended off the torch backend): the video first,
then what it ran on; the resolved device, precision, attention and backend are params (``*.resolved``) as in
the benchmark.
"""

from __future__ import annotations

from typing import Any

from vda.backends import BackendConfig
from vda.factory import Runtime
from vda.depth.process import InferResult
from vda.tracking import tags as T
from vda.tracking.environment import environment_tags
from vda.tracking.sweep import CONFIG_TAG, SweepRun
from vda.tracking.views import INFER_SUMMARY_METRICS as SUMMARY_METRICS
from vda.tracking.views import INFER_VIEW



def config_label(cfg: Any, runtime: Runtime) -> str:
    """``sdpa fp32`` (`` openvino`` off the torch backend)."""
    backend = "" if cfg.backend.name == BackendConfig.name else f" {cfg.backend.name}"
    return f"{runtime.attention.name} {runtime.precision.value}{backend}"


def run_name(stem: str, cfg: Any, runtime: Runtime) -> str:
    """``clip · sdpa fp32``."""
    return f"{stem} · {config_label(cfg, runtime)}"


def resolved_params(cfg: Any, runtime: Runtime) -> dict[str, str]:
    return {
        "device.resolved": str(runtime.device),
        "precision.resolved": runtime.precision.value,
        "attention.resolved": runtime.attention.name,
        "backend.resolved": cfg.backend.name,
    }


def run_tags(cfg: Any, runtime: Runtime, overrides: str) -> dict[str, str]:
    """Tags of every video a configuration processes: where it runs, the network, the weights, the overrides."""
    checkpoint = str(cfg.model.checkpoint)
    return {
        **environment_tags(runtime.device),
        T.KIND: "video",
        T.OVERRIDES: overrides,
        CONFIG_TAG: config_label(cfg, runtime),
        "encoder": cfg.encoder.name,
        "metric": str(cfg.model.metric),
        "mode": cfg.mode.name,
        "weights": {"random": "random", "auto": "official"}.get(checkpoint, checkpoint),
    }


def result_metrics(result: InferResult) -> dict[str, float]:
    """A processed video's metrics, under the names of :mod:`vda.tracking.vocabulary`."""
    return {
        "frames": result.frames,
        "duration_s": result.seconds,
        "throughput_fps": result.fps,
        "windows": result.stats.windows,
        "encoded_frames": result.stats.encoded_frames,
        "fp32_fallback_windows": result.stats.fp32_fallback_windows,
        "degenerate_windows": result.stats.degenerate_windows,
        **{f"stage_{stage}_s": value for stage, value in result.stage_seconds.items()},
        **result.peak_memory,
        **result.extra,
    }


def result_tags(result: InferResult) -> dict[str, str]:
    """The files a processed video wrote (``outputs``: their names, comma-separated)."""
    return {"outputs": ",".join(path.name for path in result.outputs)}


class InferSweepRun(SweepRun):
    """The parent run of ``run_infer.py -m`` (``hydra.callbacks`` in ``conf/infer.yaml``)."""

    view = INFER_VIEW
    summary_metrics = SUMMARY_METRICS

    def announce(self, line: str) -> None:
        print(line, flush=True)


__all__ = [
    "INFER_VIEW",
    "InferSweepRun",
    "SUMMARY_METRICS",
    "config_label",
    "result_metrics",
    "result_tags",
    "resolved_params",
    "run_name",
    "run_tags",
]
