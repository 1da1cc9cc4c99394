"""The tags vda puts on runs and experiments (the environment tags that say where a run happened are in
:mod:`vda.tracking.environment`).

A tag is never empty (:func:`clean` drops empty values) and never longer than MLflow's limit. Imports neither torch
nor MLflow: the process that holds a live run (:mod:`vda.tracking.worker`) uses it.
"""

from __future__ import annotations

from typing import Mapping

MAX_TAG_LENGTH = 5000
MAX_PARAM_LENGTH = 500

PARENT = "mlflow.parentRunId"  # MLflow nests a run under the run of this id
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"  # the description of a run or an experiment (Markdown)
# Experiment kind: MLflow's UI opens an experiment of this kind on its runs (machine-learning view).
EXPERIMENT_KIND = "mlflow.experimentKind"
MACHINE_LEARNING = "custom_model_development"
COMMAND = "vda.command"  # on an experiment: the entry script that logs to it
KIND = "vda.kind"  # sweep, job, implementation, dataset or video
SCENARIO = "vda.scenario"
OVERRIDES = "vda.overrides"  # the full command-line overrides of the run
STATUS = "status"  # vda's own status: done/ok, unavailable, oom, error, failed, killed
STATUS_REASON = "status_reason"  # why a run did not end ok (absent when it did)
SWEEP_JOBS = "jobs."  # jobs.<status> on a sweep parent: how many jobs ended so


def clean(tags: Mapping[str, object]) -> dict[str, str]:
    """``tags`` as strings within MLflow's length limit, without the empty ones."""
    out = {}
    for key, value in tags.items():
        text = "" if value is None else str(value)
        if text.strip():
            out[key] = text[:MAX_TAG_LENGTH]
    return out


__all__ = [
    "COMMAND",
    "EXPERIMENT_KIND",
    "KIND",
    "MACHINE_LEARNING",
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "NOTE",
    "OVERRIDES",
    "PARENT",
    "RUN_NAME",
    "SCENARIO",
    "STATUS",
    "STATUS_REASON",
    "SWEEP_JOBS",
    "clean",
]
