"""The final model in MLflow: a pyfunc that classifies audio files, in the Model Registry.

``genrebench run`` (and ``genrebench export``) logs the exported ``final_model/`` folder as an
MLflow model whose input is a table with one column, ``path`` (audio files the serving process can
read), and whose output is one row per file: ``genre`` (the top class), ``error`` (empty unless the
file could not be used), ``warning`` (empty unless the file is band-limited below the training
audio, :mod:`benchmark.audio.band_limit`) and one ``proba_<class>`` column per class. It is
registered under ``genrebench-<benchmark>`` with the protocol scores as version tags (a rerun that
exports the same model gets its existing version back, not a new one), so

    mlflow models serve -m models:/genrebench-quick/1 --env-manager local

answers ``POST /invocations`` with ``{"dataframe_split": {"columns": ["path"], "data":
[["song.mp3"]]}}``. The model runs the very code ``genrebench predict`` runs (pair or ensemble):
the files of a request are extracted in the serving process, one after the other, and predicted
as batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from benchmark.errors import GenrebenchError
from benchmark.results import FINAL_MODEL_DIR, MODEL_META_FILE

__all__ = [
    "AudioGenreModel",
    "log_final_model",
    "model_identity",
    "registered_name",
    "registered_version",
]

log = logging.getLogger(__name__)

#: the artifact key of the final_model/ folder inside the MLflow model
ARTIFACT = FINAL_MODEL_DIR


def registered_name(benchmark: str) -> str:
    """The Model Registry name of a benchmark's final model."""
    return f"genrebench-{benchmark}"


class AudioGenreModel(PythonModel):
    """A pyfunc around a saved genrebench model: audio paths in, class probabilities out."""

    def load_context(self, context: Any) -> None:
        from benchmark.inference.saved_model import load_model

        self.model = load_model(context.artifacts[ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        from benchmark.inference.predict import predict_files

        classes = self.model.classes
        columns = [f"proba_{c}" for c in classes]
        rows = []
        paths = model_input["path"].astype(str).tolist()
        for path, pred in predict_files(self.model, paths):
            row: dict[str, Any] = {"path": path, "genre": "", "error": "", "warning": ""}
            if isinstance(pred, GenrebenchError):
                row["error"] = str(pred)
                row.update(dict.fromkeys(columns, math.nan))
            else:
                row["genre"] = pred.top(1)[0][0]
                row["warning"] = pred.warning or ""
                row.update(zip(columns, map(float, pred.proba), strict=True))
            rows.append(row)
        return pd.DataFrame(rows, columns=["path", "genre", "error", "warning", *columns])


#: the model version tag that says which model it is (see :func:`model_identity`)
IDENTITY_TAG = "genrebench.model_identity"
#: model.json keys that change from one export of the same model to the next
_VOLATILE = ("fit_s", "saved_at")


def model_identity(meta: dict[str, Any]) -> str:
    """A digest of ``model.json`` without its timings: every ``run`` that reaches the export
    refits the same model (same benchmark, data, params, members and weights), and registering
    it again would add a model version per rerun."""
    kept = {k: v for k, v in meta.items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _version_with_identity(client: Any, name: str, identity: str) -> str | None:
    """The newest registered version of ``name`` that is this model, if any."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:  # no registered model of that name yet
        return None
    same = [v for v in versions if v.tags.get(IDENTITY_TAG) == identity]
    return str(max(int(v.version) for v in same)) if same else None


def registered_version(client: Any, meta: dict[str, Any]) -> Any | None:
    """The Model Registry version (an MLflow ``ModelVersion``) that is the model of ``meta``
    (its ``model.json``), found by its identity tag; None when it is not registered (or its
    meta names no benchmark, hence no registered name)."""
    if not meta.get("benchmark"):
        return None
    name = registered_name(str(meta["benchmark"]))
    known = _version_with_identity(client, name, model_identity(meta))
    return None if known is None else client.get_model_version(name, known)


def log_final_model(final_dir: Path, tracking_uri: str, results_dir: Path) -> str:
    """Log ``final_dir`` as an MLflow model in the benchmark's experiment and register it;
    returns ``models:/<name>/<version>``."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from benchmark.tracking import Tracker, started_run

    meta = json.loads((Path(final_dir) / MODEL_META_FILE).read_text())
    bench = str(meta["benchmark"])
    name = registered_name(bench)
    identity = model_identity(meta)
    client = MlflowClient(tracking_uri)
    known = _version_with_identity(client, name, identity)
    if known is not None:
        _crown(client, name, known, meta)  # a store from before aliases, or another champion
        log.info("final model already registered as models:/%s/%s (same model)", name, known)
        return f"models:/{name}/{known}"
    # the benchmark's experiment, created as genrebench creates it (kind, artifact location)
    tracker = Tracker(tracking_uri, bench, {}, results_dir=results_dir)
    classes = list(meta["classes"])
    example_in = pd.DataFrame({"path": ["song.mp3"]})
    example_out = pd.DataFrame(
        [
            {
                "path": "song.mp3",
                "genre": classes[0],
                "error": "",
                "warning": "",
                **{f"proba_{c}": 0.1 for c in classes},
            }
        ]
    )
    signature = infer_signature(example_in, example_out)
    pair = meta.get("pair") or {}
    label = f"{pair.get('feature_set', '?')} · {pair.get('family', '?')}"
    mlflow.set_tracking_uri(tracking_uri)
    params, metrics = describe_final(meta)
    with started_run(
        experiment_id=tracker.experiment_id,
        run_name=f"final model: {label}",
        tags={"genrebench.kind": "final_model", "pair": label},
    ):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=AudioGenreModel(),
            artifacts={ARTIFACT: str(final_dir)},
            signature=signature,
            input_example=example_in,
            pip_requirements=["genrebench"],
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    tags = {
        "pair": label,
        "selected_by": str(meta.get("selected_by", "")),
        IDENTITY_TAG: identity,
    }
    for protocol, score in (meta.get("protocol_scores") or {}).items():
        tags[f"{protocol}_accuracy"] = f"{float(score['accuracy']):.4f}"
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    _crown(client, name, version, meta)
    log.info("final model registered as models:/%s/%s", name, version)
    return f"models:/{name}/{version}"


#: the alias of the version ``genrebench predict``-like clients should load (MLflow 3 aliases,
#: not the deprecated stages): ``models:/genrebench-<benchmark>@champion``
CHAMPION = "champion"


def describe_final(meta: dict[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """What the final-model run says it is, from ``model.json``: params (kind, pair or
    members, the selection protocol, seed, the tuned params) and metrics (the selection
    protocol's cross-validated accuracy and spread, every protocol's accuracy, the final
    study's inner-CV accuracy, tracks, fit time)."""
    pair = meta.get("pair") or {}
    protocol = str(meta.get("selected_by", ""))
    params: dict[str, str] = {
        "kind": str(meta.get("kind", "pair")),
        "feature_set": str(pair.get("feature_set", "")),
        "family": str(pair.get("family", "")),
        "selected_by": protocol,
        "seed": str(meta.get("seed", "")),
    }
    members = meta.get("members") or []
    if members:
        params["members"] = json.dumps(
            {f"{m['feature_set']} · {m['family']}": m["weight"] for m in members}
        )[:6000]
    for key, value in sorted((meta.get("params") or {}).items()):
        params[f"model.{key}"] = str(value)[:6000]
    metrics: dict[str, float] = {}
    scores = meta.get("protocol_scores") or {}
    chosen = scores.get(protocol) or {}
    for key in ("accuracy", "accuracy_std"):
        if chosen.get(key) is not None:
            metrics[f"selection_{key}"] = float(chosen[key])
    for other, score in scores.items():
        metrics[f"{other}_accuracy"] = float(score["accuracy"])
    for key in ("inner_accuracy", "n_tracks", "fit_s"):
        if meta.get(key) is not None:
            metrics[f"final_{key}" if key == "inner_accuracy" else key] = float(meta[key])
    return params, {k: v for k, v in metrics.items() if math.isfinite(v)}


def _description(meta: dict[str, Any]) -> str:
    """The registered version's description: what it is and how it was chosen, in words."""
    params, metrics = describe_final(meta)
    what = f"{params['feature_set']} · {params['family']}"
    if params.get("members"):
        n = len(meta.get("members") or [])
        what = f"ensemble ({params['family']}) of {n} pairs"
    protocol = params["selected_by"]
    text = f"genrebench final model of benchmark {meta.get('benchmark')}: {what}"
    if "selection_accuracy" in metrics:
        spread = metrics.get("selection_accuracy_std", math.nan)
        text += (
            f", chosen for its {protocol} cross-validated accuracy "
            f"{metrics['selection_accuracy']:.3f}"
            + (f" ± {spread:.3f}" if math.isfinite(spread) else "")
        )
    return text + ". Refit on every track; input: audio file paths (column `path`)."


def _crown(client: Any, name: str, version: str, meta: dict[str, Any]) -> None:
    """Describe the version and give it the ``champion`` alias (the newest export wins)."""
    client.update_model_version(name, version, description=_description(meta))
    client.set_registered_model_alias(name, CHAMPION, version)
