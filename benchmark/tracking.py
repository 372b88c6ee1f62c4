"""MLflow logging for one benchmark: an experiment, a parent run per pair, a child run per trial.

Layout in the tracking store (SQLite file ``results/<benchmark>/mlflow.db`` by default, or any
tracking URI: a server, PostgreSQL, ...)::

    experiment <benchmark name>
      parent run "<feature set> · <family> · <protocol>"     tag genrebench.pair = PairKey.slug
        params   feature_set, family, protocol                (static: MLflow params are immutable)
        metrics  fold_accuracy, fold_macro_f1, ... (step = outer fold)
                 accuracy, accuracy_std, ... n_folds_done, n_trials, fit_s (pair summary)
        tags     feature_set, family, protocol, the benchmark's tags (seed, config digest, ...),
                 fold_<k>_status, fold_<k>_message, genrebench.fold_<k>_logged
        artifacts search_space.json
                  folds/fold_<k>/{best_params.json, outcome.json, predictions.csv, split.csv,
                                  confusion_matrix.csv, confusion_matrix.png}
        child run "fold <k> · trial <n>" per counted Optuna trial (a trial cut off by a kill
                  is run again and counts once: only its rerun is logged)   tag mlflow.parentRunId
          params   the trial's params
          metrics  inner_accuracy, inner_running_accuracy (step = inner fold), trial_s
          tags     genrebench.study, genrebench.trial, genrebench.fold, state, pruned
          status   COMPLETE -> FINISHED, PRUNED -> KILLED, FAIL -> FAILED

Every call goes through :class:`mlflow.MlflowClient` with explicit run ids (no ``start_run``
global state), and every step is idempotent: the parent run is found again by its tag, a fold
already logged is skipped, and a trial already present is not logged twice.

Artifacts go under ``<results folder>/mlartifacts/<benchmark>`` for every database-backed
store (SQLite, PostgreSQL, ...), unless an explicit artifact location is given; a tracking
server (``http(s)://``) decides for itself. A new SQLite store is created whole or not at all
(:func:`ensure_sqlite_store`), so a kill in the first seconds of a run cannot break it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from optuna.trial import FrozenTrial, TrialState

from benchmark.errors import ConfigError
from benchmark.results import METRICS, FoldOutcome, PairKey, summarize_pairs
from benchmark.storage import default_tracking_uri, mask_url

__all__ = ["Tracker", "default_tracking_uri", "ensure_sqlite_store", "mask_url"]

log = logging.getLogger(__name__)

TAG_PAIR = "genrebench.pair"
TAG_KIND = "genrebench.kind"
TAG_STUDY = "genrebench.study"
TAG_TRIAL = "genrebench.trial"
TAG_FOLD = "genrebench.fold"
TAG_SPACE = "genrebench.search_space_sha"
TAG_PARENT = "mlflow.parentRunId"
TAG_NOTE = "mlflow.note.content"

#: Optuna trial state -> MLflow run status (unfinished trials are not logged)
TRIAL_STATUS = {
    TrialState.COMPLETE: RunStatus.to_string(RunStatus.FINISHED),
    TrialState.PRUNED: RunStatus.to_string(RunStatus.KILLED),
    TrialState.FAIL: RunStatus.to_string(RunStatus.FAILED),
}

_SQL_SCHEMES = {"sqlite", "postgresql", "postgres", "mysql", "mssql"}
_MAX_PARAM = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
_MAX_TAG = 5000  # below MAX_TAG_VAL_LENGTH (8000)


#: experiments are model-training ones: MLflow 3's UI then opens on the runs, not on its GenAI
#: overview (the tag its UI reads; "genai_development" is the other kind)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _dataset_input(feature_set: str) -> Any:
    """An MLflow dataset input naming a feature set (``ensemble``: the pairs' predictions)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = "inner_predictions.parquet" if feature_set == "ensemble" else "genrebench"
    digest = hashlib.sha256(feature_set.encode()).hexdigest()[:8]
    dataset = Dataset(name=feature_set, digest=digest, source_type="code", source=source)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


class Tracker:
    """Logs a benchmark's outcomes to MLflow (one instance, in the runner's process)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        tags: Mapping[str, str],
        *,
        results_dir: str | os.PathLike[str] | None = None,
        artifact_location: str | None = None,
    ) -> None:
        """``results_dir``: the benchmark's results folder, where a new experiment of a
        database-backed store keeps its artifacts (not ``./mlruns`` of whatever folder the
        process runs in); ``artifact_location`` overrides it. Neither changes an experiment
        that exists already (MLflow fixes its location at creation)."""
        _quiet_mlflow()
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment
        self.results_dir = Path(results_dir) if results_dir is not None else None
        self.artifact_location = artifact_location
        self.tags = {str(k): _clip(str(v), _MAX_TAG) for k, v in tags.items()}
        self._parents: dict[PairKey, str] = {}
        self._last_ts = 0
        try:
            with _fail_fast_http():
                _probe_sql(tracking_uri)
                self.client = MlflowClient(tracking_uri)
                self.experiment_id = self._experiment()
        except ConfigError:
            raise
        except Exception as exc:  # any failure to open the store is a configuration problem
            raise ConfigError(
                f"cannot open the MLflow tracking store {mask_url(tracking_uri)}: "
                f"{_reason(exc, tracking_uri)}"
            ) from exc

    # ------------------------------------------------------------------ public API

    def parent_run_id(self, pair: PairKey) -> str | None:
        """The pair's parent run id, or None when the pair has not been logged yet."""
        return self._parents.get(pair) or self._find_parent(pair)

    def log_fold(
        self,
        outcome: FoldOutcome,
        trials: Sequence[FrozenTrial] | Callable[[], Sequence[FrozenTrial]],
        split: pd.DataFrame,
        *,
        protocol_description: str,
        search_space: Mapping,
    ) -> None:
        """Log one (pair, outer fold) outcome: its trials as child runs, its metrics (step =
        fold) and artifacts on the parent run. A fold already logged is skipped (``trials`` may
        be a function, so a rerun does not read back the trials of folds logged before)."""
        k = int(outcome.fold)
        run_id = self._parent(outcome.pair)
        parent_tags = dict(self.client.get_run(run_id).data.tags)
        marker = f"{outcome.status}:{outcome.study_name}"
        if parent_tags.get(_logged_tag(k)) == marker:
            log.debug("%s fold %d already logged to MLflow", outcome.pair.label, k)
            return

        tags = {
            "protocol_description": _clip(protocol_description, _MAX_TAG),
            TAG_NOTE: _clip(f"**{outcome.pair.label}**\n\n{protocol_description}", _MAX_TAG),
        }
        space_json = json.dumps(search_space, sort_keys=True, indent=2, default=str)
        space_sha = hashlib.sha256(space_json.encode()).hexdigest()[:16]
        if parent_tags.get(TAG_SPACE) != space_sha:
            self.client.log_text(run_id, space_json, "search_space.json")
            tags[TAG_SPACE] = space_sha

        self._log_trials(run_id, outcome, trials() if callable(trials) else trials)

        metrics: list[Metric] = []
        if outcome.status == "done":
            ts = self._now()
            values = {f"fold_{m}": v for m, v in outcome.metrics.items()}
            values.update(
                fold_inner_accuracy=outcome.inner_accuracy,
                fold_fit_s=outcome.fit_s,
                fold_tune_s=outcome.tune_s,
                fold_predict_s=outcome.predict_s,
                fold_n_trials=outcome.n_trials,
                fold_n_pruned=outcome.n_pruned,
                fold_coverage=outcome.coverage,
            )
            metrics = [Metric(key, float(v), ts, k) for key, v in values.items() if _finite(v)]
            self._log_fold_artifacts(run_id, outcome, split)

        tags[f"fold_{k}_status"] = outcome.status
        if outcome.message:
            tags[f"fold_{k}_message"] = _clip(outcome.message, _MAX_TAG)
        elif f"fold_{k}_message" in parent_tags:
            self.client.delete_tag(run_id, f"fold_{k}_message")
        # the marker goes last: a fold interrupted half-way is logged again (trials deduplicated)
        tags[_logged_tag(k)] = marker
        self.client.log_batch(run_id, metrics=metrics, tags=_tags(tags))
        parent_tags.update(tags)
        self._terminate_parent(run_id, parent_tags)

    def log_pair_summary(self, pair: PairKey, rows: pd.DataFrame) -> None:
        """Headline metrics of the pair on its parent run (mean over done folds, as on the
        leaderboard); logging again replaces them (latest value wins)."""
        rows = rows[
            (rows["feature_set"] == pair.feature_set)
            & (rows["family"] == pair.family)
            & (rows["protocol"] == pair.protocol)
        ]
        run_id = self._parent(pair)
        summary = summarize_pairs(rows, baseline={}).iloc[0] if len(rows) else None
        n_done = int((rows["status"] == "done").sum())
        values: dict[str, Any] = {"n_folds_done": n_done, "n_folds": len(rows)}
        if summary is not None:
            for key in (*METRICS, "accuracy_std", "n_trials", "fit_s"):
                values[key] = summary[key]
            done = rows[rows["status"] == "done"]
            values["inner_accuracy"] = float(done["inner_accuracy"].mean()) if n_done else math.nan
            values["n_pruned"] = float(done["n_pruned"].sum())
        ts = self._now()
        metrics = [Metric(key, float(v), ts, 0) for key, v in values.items() if _finite(v)]
        tags = {
            "status": str(summary["status"]) if summary is not None else "empty",
            "folds": f"{n_done}/{len(rows)}",
        }
        members = [m for m in rows.get("members", pd.Series(dtype=object)) if m]
        if members:  # an ensemble: its members and weights, fold by fold
            tags["members"] = _clip(json.dumps([json.loads(m) for m in members]), _MAX_TAG)
        self.client.log_batch(run_id, metrics=metrics, tags=_tags(tags))

    # ------------------------------------------------------------------ experiment, parents

    def _experiment(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment_name)
        if exp is None:
            try:
                return self.client.create_experiment(
                    self.experiment_name,
                    artifact_location=_artifact_location(
                        self.tracking_uri,
                        self.experiment_name,
                        results_dir=self.results_dir,
                        explicit=self.artifact_location,
                    ),
                    tags={"genrebench.benchmark": self.experiment_name, **EXPERIMENT_KIND},
                )
            except MlflowException as exc:  # created meanwhile by another process
                if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                    raise
                exp = self.client.get_experiment_by_name(self.experiment_name)
                assert exp is not None
        if exp.tags.get(next(iter(EXPERIMENT_KIND))) is None:  # made by an older genrebench
            for key, value in EXPERIMENT_KIND.items():
                self.client.set_experiment_tag(exp.experiment_id, key, value)
        if exp.lifecycle_stage != "active":
            raise ConfigError(
                f"MLflow experiment {self.experiment_name!r} in {mask_url(self.tracking_uri)} is "
                "deleted: restore it (mlflow experiments restore) or delete it for good (mlflow gc)"
            )
        return exp.experiment_id

    def _find_parent(self, pair: PairKey) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_PAIR}` = {_quote(pair.slug)}",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def _parent(self, pair: PairKey) -> str:
        """Get or create the pair's parent run (never two for one pair)."""
        if pair in self._parents:
            return self._parents[pair]
        pair_tags = {
            TAG_PAIR: pair.slug,
            TAG_KIND: "pair",
            "feature_set": pair.feature_set,
            "family": pair.family,
            "protocol": pair.protocol,
            **self.tags,
        }
        run_id = self._find_parent(pair)
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id, start_time=self._now(), tags=pair_tags, run_name=pair.label
            )
            run_id = run.info.run_id
            params = [Param(k, pair_tags[k]) for k in ("feature_set", "family", "protocol")]
            self.client.log_batch(run_id, params=params)
            # the UI's Dataset column: what the pair trained on
            self.client.log_inputs(run_id, datasets=[_dataset_input(pair.feature_set)])
        else:  # a rerun: the benchmark's tags (commit, digests) describe the latest run
            self.client.log_batch(run_id, tags=_tags(pair_tags))
        self._parents[pair] = run_id
        return run_id

    def _terminate_parent(self, run_id: str, parent_tags: Mapping[str, str]) -> None:
        failed = any(
            key.startswith("fold_") and key.endswith("_status") and value in ("error", "timeout")
            for key, value in parent_tags.items()
        )
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(run_id, RunStatus.to_string(status), end_time=self._now())

    # ------------------------------------------------------------------ trials

    def _log_trials(
        self, parent_id: str, outcome: FoldOutcome, trials: Sequence[optuna.trial.FrozenTrial]
    ) -> None:
        todo = [t for t in trials if t.state in TRIAL_STATUS]
        if not todo:
            return
        study = outcome.study_name or "-"
        present = self._logged_trials(parent_id, study)
        for trial in todo:
            if trial.number not in present:
                self._log_trial(parent_id, outcome, study, trial)

    def _logged_trials(self, parent_id: str, study: str) -> set[int]:
        """Trial numbers of ``study`` already logged under the parent; a child left RUNNING by
        an interrupted call is deleted, so that it is logged again in full."""
        flt = f"tags.`{TAG_PARENT}` = {_quote(parent_id)} and tags.`{TAG_STUDY}` = {_quote(study)}"
        present: set[int] = set()
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=flt, max_results=1000, page_token=token
            )
            for run in page:
                if run.info.status == RunStatus.to_string(RunStatus.RUNNING):
                    self.client.delete_run(run.info.run_id)
                else:
                    present.add(int(run.data.tags[TAG_TRIAL]))
            token = page.token
            if not token:
                return present

    def _log_trial(
        self, parent_id: str, outcome: FoldOutcome, study: str, trial: optuna.trial.FrozenTrial
    ) -> None:
        k = int(outcome.fold)
        start = _ms(trial.datetime_start) or self._now()
        end = _ms(trial.datetime_complete) or start
        tags = {
            TAG_PARENT: parent_id,
            TAG_KIND: "trial",
            TAG_STUDY: study,
            TAG_TRIAL: str(trial.number),
            TAG_FOLD: str(k),
            "feature_set": outcome.pair.feature_set,
            "family": outcome.pair.family,
            "protocol": outcome.pair.protocol,
            "state": trial.state.name,
        }
        if trial.state == TrialState.PRUNED:
            tags["pruned"] = "true"
        for key, value in trial.user_attrs.items():
            tags[f"user_attr.{key}"] = _clip(str(value), _MAX_TAG)
        run = self.client.create_run(
            self.experiment_id,
            start_time=start,
            tags=tags,
            run_name=f"fold {k} · trial {trial.number}",
        )
        metrics = [
            Metric("inner_running_accuracy", float(v), end, int(step))
            for step, v in sorted(trial.intermediate_values.items())
            if _finite(v)
        ]
        # a pruned trial's value is only its last running value: inner_accuracy is for complete
        values = (trial.values or []) if trial.state == TrialState.COMPLETE else []
        if len(values) == 1 and _finite(values[0]):
            metrics.append(Metric("inner_accuracy", float(values[0]), end, 0))
        if trial.duration is not None:
            metrics.append(Metric("trial_s", trial.duration.total_seconds(), end, 0))
        params = [Param(name, _clip(_param_str(v), _MAX_PARAM)) for name, v in trial.params.items()]
        if metrics or params:
            self.client.log_batch(run.info.run_id, metrics=metrics, params=params)
        self.client.set_terminated(run.info.run_id, TRIAL_STATUS[trial.state], end_time=end)

    # ------------------------------------------------------------------ artifacts

    def _log_fold_artifacts(self, run_id: str, outcome: FoldOutcome, split: pd.DataFrame) -> None:
        k = int(outcome.fold)
        with tempfile.TemporaryDirectory(prefix="genrebench-mlflow-") as tmp:
            out = Path(tmp)
            (out / "best_params.json").write_text(
                json.dumps(outcome.params, sort_keys=True, indent=2, default=str)
            )
            (out / "outcome.json").write_text(
                json.dumps(_outcome_summary(outcome), indent=2, default=str)
            )
            split.to_csv(out / "split.csv", index=False)
            preds = outcome.predictions
            if preds is not None and len(preds):
                preds.to_csv(out / "predictions.csv", index=False)
                cm = confusion_matrix(preds)
                cm.to_csv(out / "confusion_matrix.csv")
                title = f"{outcome.pair.label} · fold {k}"
                _plot_confusion(cm, title, out / "confusion_matrix.png")
            self.client.log_artifacts(run_id, tmp, artifact_path=f"folds/fold_{k}")

    # ------------------------------------------------------------------ helpers

    def _now(self) -> int:
        """Milliseconds, strictly increasing within this tracker: of two values logged for one
        metric at one step, the later one is the one MLflow shows."""
        self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        return self._last_ts


def confusion_matrix(predictions: pd.DataFrame) -> pd.DataFrame:
    """Counts, rows = true genre, columns = predicted genre, in the class order of the
    ``proba_<genre>`` columns (else sorted)."""
    classes = [c.removeprefix("proba_") for c in predictions.columns if c.startswith("proba_")]
    seen = set(map(str, predictions["y_true"])) | set(map(str, predictions["y_pred"]))
    classes += sorted(seen - set(classes))
    cm = pd.crosstab(predictions["y_true"].astype(str), predictions["y_pred"].astype(str)).reindex(
        index=classes, columns=classes, fill_value=0
    )
    cm.index.name, cm.columns.name = "true", "predicted"
    return cm.astype(int)


def _plot_confusion(cm: pd.DataFrame, title: str, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    n = len(cm)
    size = max(3.0, 0.45 * n + 1.5)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    values = cm.to_numpy()
    ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(n), cm.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), cm.index, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    top = values.max() if values.size else 0
    for i in range(n):
        for j in range(n):
            if values[i, j]:
                color = "white" if values[i, j] > top / 2 else "black"
                ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _outcome_summary(outcome: FoldOutcome) -> dict[str, Any]:
    keys = (
        "status",
        "message",
        "metrics",
        "inner_accuracy",
        "n_trials",
        "n_pruned",
        "n_train",
        "n_test",
        "coverage",
        "tune_s",
        "fit_s",
        "predict_s",
        "params",
        "study_name",
    )
    out = {key: getattr(outcome, key) for key in keys}
    out.update(pair=outcome.pair.label, fold=outcome.fold)
    return out


def _logged_tag(fold: int) -> str:
    return f"genrebench.fold_{fold}_logged"


def _tags(tags: Mapping[str, str]) -> list[RunTag]:
    return [RunTag(k, str(v)) for k, v in tags.items()]


def _quote(value: str) -> str:
    """A string literal for an MLflow search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search MLflow for a value holding both quote kinds: {value!r}")


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _ms(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _param_str(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _artifact_location(
    tracking_uri: str,
    experiment: str,
    *,
    results_dir: Path | None = None,
    explicit: str | None = None,
) -> str | None:
    """Where a new experiment keeps its artifacts: ``explicit`` when given; for a database
    store, ``<results_dir>/mlartifacts/<experiment>`` (an SQLite store without ``results_dir``:
    beside the database file), since MLflow's default is ``./mlruns`` in whatever folder the
    process runs from; ``None`` for a tracking server, which proxies or places artifacts
    itself."""
    if explicit:
        if "://" in explicit or explicit.startswith("file:"):
            return explicit
        return Path(explicit).expanduser().resolve().as_uri()
    if urlsplit(tracking_uri).scheme.split("+")[0].lower() not in _SQL_SCHEMES:
        return None
    db = _sqlite_path(tracking_uri)
    base = results_dir if results_dir is not None else (db.parent if db is not None else None)
    if base is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment) or "experiment"
    return (Path(base) / "mlartifacts" / safe).resolve().as_uri()


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(tracking_uri).database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def _probe_sql(tracking_uri: str) -> None:
    """Connect once, without MLflow's retry loop (about 100 s on an unreachable database)."""
    scheme = urlsplit(tracking_uri).scheme.split("+")[0].lower()
    if scheme not in _SQL_SCHEMES:
        return
    import sqlalchemy

    db = _sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        ensure_sqlite_store(db)  # before connecting: a connection creates an empty file
    connect_args = {"connect_timeout": 10} if scheme in ("postgresql", "postgres", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(tracking_uri, connect_args=connect_args)
    except ImportError as exc:
        raise ConfigError(
            f"cannot open the MLflow tracking store {mask_url(tracking_uri)}: its database "
            f"driver is not installed ({exc})"
        ) from exc
    try:
        with engine.connect() as conn:
            if db is not None:
                # write-ahead log: fewer syncs per commit (about 20 % less time per trial run)
                # and `mlflow ui` can read while the benchmark writes; a no-op when already set
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        engine.dispose()


def ensure_sqlite_store(db: Path) -> None:
    """Make ``db`` a complete MLflow SQLite store, or fail in one line.

    MLflow migrates a new SQLite file in place, in some sixty steps that SQLite does not roll
    back: a kill half-way leaves a file that every later open fails on ("duplicate column name:
    creator"). So a new store is migrated in a temporary file beside ``db`` and renamed into
    place (a rename is atomic). An existing file that is not a complete store of this MLflow
    (a kill before this function existed, a foreign file) is moved aside to
    ``<db>.broken-<time>`` when it holds no runs, since nothing is lost; one that holds runs is
    left alone with an error, since only its owner can say whether to upgrade or discard it.
    A lock file beside ``db`` keeps two processes from creating or repairing it at once.
    """
    db = Path(db)
    with _file_lock(db.with_name(f".{db.name}.lock")):
        for stale in db.parent.glob(f".{db.name}.*.tmp*"):  # left by a kill while creating
            stale.unlink(missing_ok=True)
        if db.is_dir():
            raise ConfigError(f"cannot open the MLflow tracking store {db}: it is a folder")
        if db.exists():
            problem, n_runs = _store_problem(db)
            if problem is None:
                return
            if n_runs:
                raise ConfigError(
                    f"cannot open the MLflow tracking store {db}: it is {problem} and holds "
                    f"{n_runs} run(s), so it is left as is; if an older MLflow wrote it, back it "
                    f"up and run `mlflow db upgrade sqlite:///{db}`, else move it away"
                )
            moved = _move_aside(db)
            _forget_engines(db)
            log.warning(
                "MLflow store %s was %s and held no runs: moved it to %s, creating a new one",
                db,
                problem,
                moved.name,
            )
        _create_sqlite_store(db)


def _create_sqlite_store(db: Path) -> None:
    """A fresh, fully migrated store at ``db``, built in a temporary file and renamed there."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp = db.with_name(f".{db.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        # rollback journal (the default), not WAL: once closed, the file alone is the store
        store = SqlAlchemyStore(f"sqlite:///{tmp}", (db.parent / "mlartifacts").as_uri())
        store.engine.dispose()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, db)
        _fsync_dir(db.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _store_problem(db: Path) -> tuple[str | None, int]:
    """What is wrong with the store file ``db`` (None: nothing) and how many runs it holds."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            versions = (
                [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
                if "alembic_version" in tables
                else []
            )
            n_runs = (
                int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
                if "runs" in tables
                else 0
            )
    except sqlite3.OperationalError as exc:  # unreadable, locked: not a reason to move it
        raise ConfigError(f"cannot open the MLflow tracking store {db}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        return f"not an SQLite database ({exc})", 0
    head, expected = _expected_schema()
    have = len(expected & tables)
    if versions == [head] and have == len(expected):
        return None, n_runs
    if not tables:
        return "empty", n_runs
    version = ", ".join(versions) or "none"
    return (
        f"incomplete (schema version {version}, expected {head}; {have} of {len(expected)} tables)",
        n_runs,
    )


def _expected_schema() -> tuple[str, set[str]]:
    """The schema revision and the tables of a complete store of the installed MLflow (pinned
    in pyproject.toml, so its helpers below are stable)."""
    import mlflow.store.db.utils as db_utils
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (registers every table)
    from mlflow.store.db.base_sql_model import Base

    return db_utils._get_latest_schema_revision(), {*Base.metadata.tables, "alembic_version"}


def _move_aside(db: Path) -> Path:
    """Rename ``db`` (and its WAL side files) to ``<db>.broken-<time>``; returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db.with_name(f"{db.name}.broken-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = db.with_name(f"{db.name}.broken-{stamp}-{n}")
    os.replace(db, target)
    for side in ("-wal", "-shm", "-journal"):
        extra = db.with_name(db.name + side)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + side))
    return target


def _forget_engines(db: Path) -> None:
    """Drop MLflow's cached engines on ``db``: their pooled connections still point at the file
    that was moved aside (only a process that opened it before, such as a test, has any)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with SqlAlchemyStore._engine_map_lock:
        for uri in [u for u in SqlAlchemyStore._engine_map if _sqlite_path(u) == db]:
            SqlAlchemyStore._engine_map.pop(uri).dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (released by the OS if the process dies); none on systems
    without ``fcntl`` or where the lock file cannot be made (the store's own errors follow)."""
    try:
        import fcntl

        fh = open(path, "a")  # noqa: SIM115  (closed below, after the lock is released)
    except (ImportError, OSError):  # pragma: no cover - Windows, a read-only folder
        fh = None
    if fh is None:  # pragma: no cover
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder`` (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _fail_fast_http() -> Iterator[None]:
    """While the store is first opened, a tracking server that does not answer fails at once
    (MLflow's default retries for minutes); later calls keep MLflow's retries."""
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _quiet_mlflow() -> None:
    """Silence MLflow's chatter that says nothing about the benchmark: schema-migration notices
    on a new SQLite file and the "View run at" line a tracking server prints per run."""
    for name in ("alembic", "mlflow.store.db.utils"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _reason(exc: BaseException, tracking_uri: str) -> str:
    """One line, credentials masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = mask_url(text or type(exc).__name__)
    try:
        password = urlsplit(tracking_uri).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    if isinstance(exc, ImportError):
        text = f"database driver not installed ({text})"
    return _clip(text, 300)
