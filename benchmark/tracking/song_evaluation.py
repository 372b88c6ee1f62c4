"""An evaluation in MLflow: one run (``genrebench.kind = evaluation``) in the experiment
``<benchmark>-evaluations`` (``genrebench-evaluations`` for a model that names no benchmark),
apart from the benchmark's cross-validated runs, holding

* the metrics, each named ``eval_...`` so that none is mistaken for a cross-validated score
  (``eval_accuracy``, ``eval_balanced_accuracy``, ``eval_macro_f1``, ``eval_recall_<class>``,
  each with ``_ci_low``/``_ci_high``; ``eval_n_scored``, ``eval_n_failed``,
  ``eval_n_skipped``);
* the labelled files as the run's dataset input (``mlflow.data.from_pandas`` of ``path, label,
  class``, context ``evaluation``);
* artifacts under ``evaluation/``: ``files.csv`` (one row per file), ``evaluation.json``
  (everything) and ``evaluation.html`` (the page);
* the link to the model: when the model is registered (found by its identity tag,
  :func:`benchmark.inference.serving.registered_version`), the param ``model_uri`` and the tag
  ``genrebench.model_version`` say ``models:/<name>/<version>``, the metrics are logged against
  the version's logged model (``model_id``) and the logged model is an input of the run.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from benchmark.inference.song_evaluation import SongEvaluation

__all__ = ["EVALUATE_EXPERIMENT", "song_evaluation_experiment", "log_song_evaluation"]

#: the experiment of models saved outside a benchmark
EVALUATE_EXPERIMENT = "genrebench-evaluations"

#: every evaluation metric's prefix: an accuracy on a user's files is no CV accuracy
PREFIX = "eval_"


def song_evaluation_experiment(benchmark: str | None) -> str:
    """The experiment of the evaluations of a benchmark's models (never the benchmark's own:
    a score on a few files would top its charts of cross-validated scores)."""
    return f"{benchmark}-evaluations" if benchmark else EVALUATE_EXPERIMENT


def _key(name: str) -> str:
    """An MLflow metric key: ``eval_`` then letters, digits and ``_-. /`` only."""
    return PREFIX + re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def _logged_model_id(version: Any) -> str | None:
    """The id of the logged model behind a registered version (MLflow 3): its ``model_id``, or
    the ``m-…`` of its ``models:/m-…`` source (a version registered by ``log_model`` in a
    SQLite store leaves ``model_id`` empty)."""
    if version is None:
        return None
    if getattr(version, "model_id", None):
        return str(version.model_id)
    source = str(getattr(version, "source", "") or "")
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def _dataset(ev: SongEvaluation) -> Any:
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    table = pd.DataFrame(
        {
            "path": [r["file"] for r in ev.rows],
            "label": [r["label"] for r in ev.rows],
            "class": [r["class"] or "" for r in ev.rows],
        }
    )
    name = Path(ev.source).name or "labelled files"
    with warnings.catch_warnings():  # a local path reads as either of MLflow's two local kinds
        warnings.simplefilter("ignore", UserWarning)
        return from_pandas(table, source=str(ev.source), name=name, targets="class")


def log_song_evaluation(
    ev: SongEvaluation, tracking_uri: str, *, results_dir: Path | None = None
) -> dict[str, Any]:
    """Log ``ev`` as an evaluation run; returns ``{"run_id", "experiment", "tracking_uri",
    "model_uri"}`` (``model_uri`` None when the model is not registered) and records it in
    ``ev.tracking``. ``results_dir``: where a new experiment of a database store keeps its
    artifacts (default: beside an SQLite file)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelInput

    from benchmark.inference.serving import IDENTITY_TAG, model_identity, registered_version
    from benchmark.report.song_evaluation_page import render_song_evaluation
    from benchmark.storage import mask_url
    from benchmark.tracking._common import started_run
    from benchmark.tracking.tracker import Tracker

    meta = ev.model.meta
    experiment = song_evaluation_experiment(meta.get("benchmark"))
    tracker = Tracker(tracking_uri, experiment, {}, results_dir=results_dir)
    version = registered_version(MlflowClient(tracking_uri), meta)
    model_uri = f"models:/{version.name}/{version.version}" if version is not None else None
    model_id = _logged_model_id(version)
    counts = {"n_failed": float(ev.count("error")), "n_skipped": float(ev.count("skipped"))}
    metrics = {_key(k): v for k, v in (ev.metrics.flat() | counts).items()}
    tags = {
        "genrebench.kind": "evaluation",
        IDENTITY_TAG: model_identity(meta),
        "genrebench.model_path": str(ev.model.path),
    }
    if model_uri:
        tags["genrebench.model_version"] = model_uri
    mlflow.set_tracking_uri(tracking_uri)
    dataset = _dataset(ev)
    with started_run(
        experiment_id=tracker.experiment_id,
        run_name=f"evaluation: {Path(ev.source).name or ev.source}",
        tags=tags,
    ) as run:
        mlflow.log_params(
            {
                "model_uri": model_uri or "not registered",
                "model_path": str(ev.model.path),
                "input": ev.source,
                "mapping": json.dumps(ev.mapping) if ev.mapping else "none",
                "windows": ev.windows,
                "n_boot": ev.metrics.n_boot,
                "seed": ev.metrics.seed,
            }
        )
        mlflow.log_input(
            dataset,
            context="evaluation",
            model=LoggedModelInput(model_id) if model_id else None,
        )
        mlflow.log_metrics(metrics, model_id=model_id, dataset=dataset)
        info = {
            "run_id": run.info.run_id,
            "experiment": experiment,
            "tracking_uri": mask_url(tracking_uri),
            "model_uri": model_uri,
        }
        ev.tracking = info
        with tempfile.TemporaryDirectory() as tmp:
            import pandas as pd

            folder = Path(tmp)
            pd.DataFrame(ev.rows).to_csv(folder / "files.csv", index=False)
            (folder / "evaluation.json").write_text(json.dumps(ev.to_dict(), indent=2))
            (folder / "evaluation.html").write_text(render_song_evaluation(ev), encoding="utf-8")
            mlflow.log_artifacts(str(folder), artifact_path="evaluation")
    return info
