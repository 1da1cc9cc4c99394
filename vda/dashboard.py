"""The dashboard: MLflow's UI on the project's store, opened on the runs of each vda experiment.

    python -m vda.dashboard [--tracking-uri URI] [--host 127.0.0.1] [--port 5000] [--dry-run]

Prints the store and, for each experiment of ``run_infer.py`` and ``run_bench.py`` in it (tag ``vda.command``), the
URL of its runs table (machine-learning view, columns preset), then serves the UI (``mlflow ui``) until interrupted.
``--dry-run`` prints the URLs only. The store is the commands' default: ``$MLFLOW_TRACKING_URI`` or
``./mlflow.db``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from vda.config import MlflowConfig
from vda.tracking.store import open_store, tracking_uri
from vda.tracking.tags import COMMAND
from vda.tracking.ui import runs_url
from vda.tracking.views import VIEWS


def urls(uri: str, base: str) -> list[str]:
    """``experiment: URL`` for each experiment of a vda command in the store ``uri``."""
    from mlflow.tracking import MlflowClient

    lines = []
    for experiment in MlflowClient(tracking_uri=uri).search_experiments():
        view = VIEWS.get(experiment.tags.get(COMMAND, ""))
        if view is not None:
            store = open_store(MlflowConfig(tracking_uri=uri, experiment=experiment.name), view)
            lines.append(f"{experiment.name}: {runs_url(store, view, base=base)}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vda.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=5000, type=int)
    parser.add_argument("--dry-run", action="store_true", help="print the URLs, do not start the UI")
    args = parser.parse_args(argv)
    uri = tracking_uri(args.tracking_uri)
    if not uri.startswith("sqlite:///"):
        sys.stderr.write(f"error: {uri} is not a local store; open its server's UI instead\n")
        return 2
    found = urls(uri, f"http://{args.host}:{args.port}")
    print(f"MLflow store: {uri}")
    print("\n".join(found) if found else "no vda experiment yet: run run_infer.py or run_bench.py first")
    if args.dry_run:
        return 0
    sys.stdout.flush()
    from mlflow.cli import cli

    return cli.main(
        ["ui", "--backend-store-uri", uri, "--host", args.host, "--port", str(args.port)], standalone_mode=True
    )


if __name__ == "__main__":
    sys.exit(main())
