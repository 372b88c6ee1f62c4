"""MLflow logging for one benchmark: an experiment, a parent run per pair, a child run per trial.

Layout in the tracking store (SQLite file ``results/<benchmark>/mlflow.db`` by default, or any
tracking URI: a server, PostgreSQL, ...)::

    experiment <benchmark name>
      parent run "<feature set> · <family> · <protocol>"     tag genrebench.pair = PairKey.slug
        (an ensemble's too: "ensemble · <method> · <protocol>", its folds logged from its rows)
        params   feature_set, family, protocol                (static: MLflow params are immutable)
        metrics  accuracy_mean, accuracy_std, balanced_accuracy_mean, ... inner_accuracy_mean,
                 fit_s_mean, n_trials, n_folds_done (pair summary: the run's main columns)
                 fold_accuracy, fold_macro_f1, ... (step = outer fold: the charts per fold)
        tags     feature_set, family, protocol, status, folds ("10/10"), the benchmark's tags
                 (seed, config digest, data checksum, ...), fold_<k>_message of a failed fold;
                 bookkeeping under mlflow.genrebench.* (hidden by the UI): fold_<k>_logged,
                 fold_<k>_status, search_space_sha
        dataset  the feature set, digest = the data's checksum
        status   FINISHED; FAILED when a fold failed; KILLED when the benchmark was interrupted
                 before the pair's folds were done (the next run resumes and finishes it)
        artifacts search_space.json (not for an ensemble)
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
(:func:`~benchmark.tracking.store.ensure_sqlite_store`), so a kill in the first seconds of a run
cannot break it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from optuna.trial import FrozenTrial, TrialState

from benchmark.errors import ConfigError
from benchmark.results import (
    INNER_PREDICTIONS_FILE,
    METRICS,
    PREDICTION_KEY,
    FoldOutcome,
    PairKey,
    summarize_pairs,
)
from benchmark.storage import mask_url
from benchmark.tracking._common import (
    _MAX_PARAM,
    _MAX_TAG,
    HIDDEN,
    TAG_FOLD,
    TAG_KIND,
    TAG_NOTE,
    TAG_PAIR,
    TAG_PARENT,
    TAG_SPACE,
    TAG_STUDY,
    TAG_TRIAL,
    _clip,
    _finite,
    _legacy_logged_tag,
    _logged_tag,
    _ms,
    _param_str,
    _quote,
    _status_tag,
    _tags,
)
from benchmark.tracking.artifacts import write_fold_artifacts
from benchmark.tracking.store import (
    _artifact_location,
    _fail_fast_http,
    _probe_sql,
    _quiet_mlflow,
    _reason,
)

log = logging.getLogger(__name__)

#: Optuna trial state -> MLflow run status (unfinished trials are not logged)
TRIAL_STATUS = {
    TrialState.COMPLETE: RunStatus.to_string(RunStatus.FINISHED),
    TrialState.PRUNED: RunStatus.to_string(RunStatus.KILLED),
    TrialState.FAIL: RunStatus.to_string(RunStatus.FAILED),
}

#: experiments are model-training ones: MLflow 3's UI then opens on the runs, not on its GenAI
#: overview (the tag its UI reads; "genai_development" is the other kind)
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _dataset_input(feature_set: str, data_checksum: str) -> Any:
    """An MLflow dataset input naming a feature set (``ensemble``: the pairs' predictions), with
    the data's checksum as its digest (the ``data_checksum`` of every result row): two runs on
    other data show other digests."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = INNER_PREDICTIONS_FILE if feature_set == "ensemble" else "genrebench"
    dataset = Dataset(name=feature_set, digest=data_checksum, source_type="code", source=source)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


#: the pair summary's metrics, the main columns of a pair's run: means over the done folds
#: (``<metric>_mean``), the accuracy's spread, and totals
SUMMARY_MEANS = (*METRICS, "inner_accuracy", "fit_s")

_RUNNING = RunStatus.to_string(RunStatus.RUNNING)


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
        #: the parent runs' tags and latest metrics as this tracker last read or wrote them: a
        #: marker or value seen here is on the server (they are only ever added or replaced)
        self._seen: dict[str, tuple[dict[str, str], dict[str, float]]] = {}
        #: runs this tracker created or changed and has not ended yet (a child between its
        #: creation and its end, a parent until its fold is logged): what an interrupt kills
        self._open: set[str] = set()
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
        search_space: Mapping | None,
    ) -> None:
        """Log one (pair, outer fold) outcome: its trials as child runs, its metrics (step =
        fold) and artifacts on the parent run, which is then ended (FINISHED, or FAILED when a
        fold failed). A fold already logged is skipped (``trials`` may be a function, so a
        rerun does not read back the trials of folds logged before). ``search_space`` None:
        the pair has none (an ensemble)."""
        k = int(outcome.fold)
        run_id = self._parent(outcome.pair)
        marker = f"{outcome.status}:{outcome.study_name}"
        seen = self._seen.get(run_id)
        if seen is None or seen[0].get(_logged_tag(k)) != marker:
            seen = self._read(run_id)  # not known to be logged: ask the server
        parent_tags = seen[0]
        if marker in (parent_tags.get(_logged_tag(k)), parent_tags.get(_legacy_logged_tag(k))):
            log.debug("%s fold %d already logged to MLflow", outcome.pair.label, k)
            return

        self._open.add(run_id)
        tags = {
            "protocol_description": _clip(protocol_description, _MAX_TAG),
            TAG_NOTE: _clip(f"**{outcome.pair.label}**\n\n{protocol_description}", _MAX_TAG),
        }
        if search_space is not None:
            space_json = json.dumps(search_space, sort_keys=True, indent=2, default=str)
            space_sha = hashlib.sha256(space_json.encode()).hexdigest()[:16]
            if parent_tags.get(TAG_SPACE) != space_sha:
                self.client.log_text(run_id, space_json, "search_space.json")
                tags[TAG_SPACE] = space_sha

        self._log_trials(run_id, outcome, trials() if callable(trials) else trials)

        metrics: list[Metric] = []
        if outcome.status == "done":
            ts = self._now()
            values = {f"fold_{name}": v for name, v in outcome.scores().items()}
            metrics = [Metric(key, float(v), ts, k) for key, v in values.items() if _finite(v)]
            self._log_fold_artifacts(run_id, outcome, split)

        tags[_status_tag(k)] = outcome.status
        if outcome.message:  # a failed fold's reason: for the person reading the run
            tags[f"fold_{k}_message"] = _clip(outcome.message, _MAX_TAG)
        elif f"fold_{k}_message" in parent_tags:
            self.client.delete_tag(run_id, f"fold_{k}_message")
            parent_tags.pop(f"fold_{k}_message")
        # the marker goes last: a fold interrupted half-way is logged again (trials deduplicated)
        tags[_logged_tag(k)] = marker
        self.client.log_batch(run_id, metrics=metrics, tags=_tags(tags))
        parent_tags.update(tags)
        self._end_parent(run_id, parent_tags)

    def log_pair_summary(
        self,
        pair: PairKey,
        rows: pd.DataFrame,
        *,
        predictions: pd.DataFrame | None = None,
        splits: pd.DataFrame | None = None,
        protocol_description: str = "",
    ) -> None:
        """Headline metrics of the pair on its parent run: the mean over done folds of each
        metric (``accuracy_mean``, ...), ``accuracy_std`` and totals, as on the leaderboard;
        logging again replaces them (latest value wins). The run is then ended.

        Folds that no Optuna study stands behind (an ensemble's: empty ``study_name``) are
        logged here first, from their rows, ``predictions`` and ``splits`` (the results
        tables), with the metrics and artifacts :meth:`log_fold` gives a pair's folds."""
        rows = rows[
            (rows["feature_set"] == pair.feature_set)
            & (rows["family"] == pair.family)
            & (rows["protocol"] == pair.protocol)
        ]
        for row in rows.to_dict(orient="records"):
            if not row.get("study_name") and row["status"] in ("done", "error", "timeout"):
                self._log_row(pair, row, predictions, splits, protocol_description)
        run_id = self._parent(pair)
        summary = summarize_pairs(rows, baseline={}).iloc[0] if len(rows) else None
        n_done = int((rows["status"] == "done").sum())
        values: dict[str, Any] = {"n_folds_done": n_done, "n_folds": len(rows)}
        if summary is not None:
            done = rows[rows["status"] == "done"]
            for key in SUMMARY_MEANS:
                values[f"{key}_mean"] = float(done[key].mean()) if n_done else math.nan
            values["accuracy_std"] = summary["accuracy_std"]
            values["n_trials"] = summary["n_trials"]
            values["n_pruned"] = float(done["n_pruned"].sum())
        tags = {
            "status": str(summary["status"]) if summary is not None else "empty",
            "folds": f"{n_done}/{len(rows)}",
        }
        members = [m for m in rows.get("members", pd.Series(dtype=object)) if m]
        if members:  # an ensemble: its members and weights, fold by fold
            tags["members"] = _clip(json.dumps([json.loads(m) for m in members]), _MAX_TAG)
        finite = {key: float(v) for key, v in values.items() if _finite(v)}
        text = {k: str(v) for k, v in tags.items()}
        seen_tags, seen_metrics = self._seen.get(run_id) or self._read(run_id)
        if not (
            all(seen_metrics.get(k) == v for k, v in finite.items())
            and all(seen_tags.get(k) == v for k, v in text.items())
        ):
            ts = self._now()
            metrics = [Metric(key, v, ts, 0) for key, v in finite.items()]
            self.client.log_batch(run_id, metrics=metrics, tags=_tags(text))
            seen_tags.update(text)
            seen_metrics.update(finite)
        if run_id in self._open or self._status(run_id) == _RUNNING:
            self._end_parent(run_id, seen_tags)

    @contextlib.contextmanager
    def ending(self, pending: Callable[[], Iterable[PairKey]] = tuple) -> Iterator[None]:
        """Around a benchmark: if it is interrupted (Ctrl-C, SIGTERM made an interrupt) the runs
        it leaves RUNNING end KILLED, and FAILED if it crashes (:meth:`interrupted`, with the
        pairs ``pending()`` names), then the exception goes on."""
        try:
            yield
        except BaseException as exc:
            killed = isinstance(exc, KeyboardInterrupt | SystemExit)
            self.interrupted(pending(), status="KILLED" if killed else "FAILED")
            raise

    def interrupted(self, pending: Iterable[PairKey] = (), *, status: str = "KILLED") -> None:
        """End as ``status`` (KILLED: the benchmark was interrupted; FAILED: it crashed) every
        run this tracker left RUNNING, and the parent runs of the ``pending`` pairs (folds the
        interrupt left undone; the next run logs them and ends the run FINISHED). Best effort:
        a store that fails here must not hide the interrupt."""
        todo = set(self._open)
        for pair in pending:
            run_id = self.parent_run_id(pair)
            if run_id is not None:
                todo.add(run_id)
        for run_id in sorted(todo):
            try:
                self.client.set_terminated(run_id, status, end_time=self._now())
            except Exception as exc:  # noqa: BLE001  (the interrupt is what the user sees)
                log.warning("MLflow run %s not ended (%s)", run_id, str(exc).splitlines()[0])
            self._open.discard(run_id)

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

    def _read(self, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
        """The parent run's tags and latest metrics, read from the server and remembered."""
        data = self.client.get_run(run_id).data
        self._seen[run_id] = (dict(data.tags), dict(data.metrics))
        return self._seen[run_id]

    def _status(self, run_id: str) -> str:
        return str(self.client.get_run(run_id).info.status)

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
        pair_tags = {TAG_PAIR: pair.slug, TAG_KIND: "pair", **pair.as_dict(), **self.tags}
        run_id = self._find_parent(pair)
        if run_id is None:
            run = self.client.create_run(
                self.experiment_id, start_time=self._now(), tags=pair_tags, run_name=pair.label
            )
            run_id = run.info.run_id
            self._open.add(run_id)
            params = [Param(k, v) for k, v in pair.as_dict().items()]
            self.client.log_batch(run_id, params=params)
            checksum = self.tags.get("data_checksum")
            if checksum:  # the UI's Dataset column: what the pair trained on, and which data
                self.client.log_inputs(
                    run_id, datasets=[_dataset_input(pair.feature_set, checksum)]
                )
        else:  # a rerun: the benchmark's tags (commit, digests) describe the latest run
            self.client.log_batch(run_id, tags=_tags(pair_tags))
        self._parents[pair] = run_id
        return run_id

    def _end_parent(self, run_id: str, parent_tags: Mapping[str, str]) -> None:
        """End the parent run: FAILED when a fold of it failed, else FINISHED."""
        failed = any(
            key.startswith(("fold_", f"{HIDDEN}fold_"))
            and key.endswith("_status")
            and value in ("error", "timeout")
            for key, value in parent_tags.items()
        )
        status = RunStatus.FAILED if failed else RunStatus.FINISHED
        self.client.set_terminated(run_id, RunStatus.to_string(status), end_time=self._now())
        self._open.discard(run_id)

    def _log_row(
        self,
        pair: PairKey,
        row: Mapping[str, Any],
        predictions: pd.DataFrame | None,
        splits: pd.DataFrame | None,
        protocol_description: str,
    ) -> None:
        """Log a fold from its result row (an ensemble's), as :meth:`log_fold` logs a pair's."""
        k = int(row["fold"])
        preds = None
        if predictions is not None and len(predictions):
            mine = predictions[
                (predictions["feature_set"] == pair.feature_set)
                & (predictions["family"] == pair.family)
                & (predictions["protocol"] == pair.protocol)
                & (predictions["fold"] == k)
            ]
            preds = mine.drop(columns=list(PREDICTION_KEY)).dropna(axis=1, how="all")
            preds = preds.reset_index(drop=True)
        split = pd.DataFrame()
        if splits is not None and len(splits):
            split = splits[(splits["protocol"] == pair.protocol) & (splits["fold"] == k)]
        outcome = FoldOutcome.from_row(row, preds)
        self.log_fold(
            outcome, [], split, protocol_description=protocol_description, search_space=None
        )

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
            **outcome.pair.as_dict(),
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
        self._open.add(run.info.run_id)
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
        self._open.discard(run.info.run_id)

    # ------------------------------------------------------------------ artifacts

    def _log_fold_artifacts(self, run_id: str, outcome: FoldOutcome, split: pd.DataFrame) -> None:
        k = int(outcome.fold)
        with tempfile.TemporaryDirectory(prefix="genrebench-mlflow-") as tmp:
            write_fold_artifacts(Path(tmp), outcome, split)
            self.client.log_artifacts(run_id, tmp, artifact_path=f"folds/fold_{k}")

    # ------------------------------------------------------------------ helpers

    def _now(self) -> int:
        """Milliseconds, strictly increasing within this tracker: of two values logged for one
        metric at one step, the later one is the one MLflow shows."""
        self._last_ts = max(int(time.time() * 1000), self._last_ts + 1)
        return self._last_ts
