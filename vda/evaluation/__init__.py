"""Accuracy on the paper's benchmarks, scored exactly as the published evaluation does (no command imports).

* :mod:`~vda.evaluation.datasets`: one record per dataset (cap, crop, protocols and their index files);
* :mod:`~vda.evaluation.index`: the published layout (index json, ground truth, prediction paths);
* :mod:`~vda.evaluation.scoring`: resize, valid pixels, the per-sequence fit, AbsRel / RMSE / δ1;
* :mod:`~vda.evaluation.tae`: the temporal alignment error;
* :mod:`~vda.evaluation.evaluate`: a dataset under a protocol, one scene at a time;
* :mod:`~vda.evaluation.predictions`: predictions from disk or from a depth engine.
"""

from vda.evaluation.datasets import DATASETS, PROTOCOLS, Dataset, Protocol
from vda.evaluation.evaluate import Evaluation, Plan, SequenceScore, evaluate, plan
from vda.evaluation.predictions import EnginePredictions, SavedPredictions, missing_predictions

__all__ = [
    "DATASETS",
    "PROTOCOLS",
    "Dataset",
    "EnginePredictions",
    "Evaluation",
    "Plan",
    "Protocol",
    "SavedPredictions",
    "SequenceScore",
    "evaluate",
    "missing_predictions",
    "plan",
]
