"""MLflow tracking for both commands, in one package (MLflow itself is imported only when a run is tracked):

* :mod:`~vda.tracking.store`: the store, its experiments (same ``artifact_location`` rule everywhere), their view;
* :mod:`~vda.tracking.client`: the MLflow calls a run is written with;
* :mod:`~vda.tracking.runs`: runs written from a result (true start and end), or held open during the work by a
  child process (:class:`~vda.tracking.runs.LiveRun`, :mod:`~vda.tracking.worker`);
* :mod:`~vda.tracking.tags`: the tag names; :mod:`~vda.tracking.environment`: the environment tags (CPU model, GPU
  name, versions);
* :mod:`~vda.tracking.vocabulary`: the one set of metric names, units and precisions;
* :mod:`~vda.tracking.sweep`: a multirun's parent run and its summary;
* :mod:`~vda.tracking.ui`: the URL of the runs table a command prints; ``python -m vda.dashboard`` serves it.

The package itself imports nothing: :mod:`~vda.tracking.worker` runs without torch.
"""
