"""The one results schema: what a benchmark run writes, and what stats, report and MLflow read.

A run writes, under ``results/<benchmark>/``:

``results.parquet``
    One row per (feature set, family, protocol, outer fold), columns in :data:`RESULT_COLUMNS`
    order, then one ``p_<param>`` column per tuned parameter. ``status`` is one of
    :data:`STATUSES`; metrics are NaN unless ``status == "done"``.
``predictions.parquet``
    Out-of-fold predictions, one row per (pair, fold, test track): ``y_true``/``y_pred`` as
    genre names, ``correct`` and one ``proba_<genre>`` column per class. Paired tests (McNemar)
    and bootstrap intervals read this, so they need no rerun.
``inner_predictions.parquet``
    For each done (pair, outer fold): the out-of-fold predictions of the pair's best params on
    that fold's outer *training* part, over its inner folds (columns of ``predictions.parquet``
    plus ``inner_fold``). Every row was predicted by a model that never saw it, and no row is an
    outer test track: the ensemble stage learns members and weights from these alone.
``trials.parquet``
    Every counted trial of every study, in :data:`TRIAL_COLUMNS` (pair, fold, number, state,
    value, params and intermediate values as JSON, duration): the report's optimisation
    histories read this, never the Optuna storage.
``splits.parquet``
    Every outer split of every protocol: ``protocol, fold, track_id, part`` (train/test), so
    anyone can audit that no track or artist crosses a split.
``run.json``
    Provenance: config, seed, data checksum, package versions, git commit, date, wall time.

The dedup key of a result row is :data:`RESULT_KEY`; a rerun replaces rows with the same key.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, Field, astuple, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# numpy and pandas are imported inside the functions that need them: every stage (the CLI's
# start-up and the inference pool included) reads this module's names without loading them

__all__ = [
    "RESULTS_FILE",
    "PREDICTIONS_FILE",
    "INNER_PREDICTIONS_FILE",
    "TRIALS_FILE",
    "SPLITS_FILE",
    "RUN_FILE",
    "RUN_LOCK_FILE",
    "CLUSTER_FILE",
    "OPTUNA_DB",
    "MLFLOW_DB",
    "MLFLOW_ARTIFACTS_DIR",
    "OUTCOMES_DIR",
    "ENSEMBLES_DIR",
    "ENSEMBLES_KEY_FILE",
    "LEADERBOARD_FILE",
    "FINAL_MODEL_DIR",
    "MODEL_FILE",
    "MODEL_META_FILE",
    "FEATURE_CACHE_DIR",
    "FoldOutcome",
    "METRICS",
    "TRIAL_COLUMNS",
    "predictions_frame",
    "trials_frame",
    "PairKey",
    "RESULT_COLUMNS",
    "RESULT_KEY",
    "STATUSES",
    "proba_columns",
    "read_table",
    "results_frame",
    "summarize_pairs",
    "table_digest",
    "TIMING_COLUMNS",
    "write_table",
]

# ------------------------------------------------------------------- the names of the files
# Each file or folder of a results folder (``results/<benchmark>/``) is named here once; every
# module that reads or writes one uses these names.

#: one row per (pair, protocol, outer fold), in RESULT_COLUMNS order
RESULTS_FILE = "results.parquet"
#: the outer out-of-fold predictions, one row per (pair, fold, test track)
PREDICTIONS_FILE = "predictions.parquet"
#: the inner OOF predictions the ensemble stage learns from
INNER_PREDICTIONS_FILE = "inner_predictions.parquet"
#: every counted trial of every study (TRIAL_COLUMNS): the report's histories
TRIALS_FILE = "trials.parquet"
#: every outer split of every protocol, for auditing
SPLITS_FILE = "splits.parquet"
#: provenance: config, seed, data checksum, versions, commit, wall time
RUN_FILE = "run.json"
#: the advisory lock of the one run writing the folder
RUN_LOCK_FILE = ".run.lock"
#: while a run goes: its cluster's scheduler, dashboard and pid
CLUSTER_FILE = ".cluster.json"
#: the default Optuna storage (SQLite) of the run's studies
OPTUNA_DB = "optuna.db"
#: the default MLflow tracking store (SQLite)
MLFLOW_DB = "mlflow.db"
#: the artifacts of a database-backed MLflow store, beside its database
MLFLOW_ARTIFACTS_DIR = "mlartifacts"
#: one JSON per finished fold (a resumed run reuses them)
OUTCOMES_DIR = "outcomes"
#: the ensemble stage's last rows and predictions, with its inputs' key
ENSEMBLES_DIR = "ensembles"
#: in ENSEMBLES_DIR: the key of the inputs its tables were learnt from
ENSEMBLES_KEY_FILE = "key.json"
#: the report page
LEADERBOARD_FILE = "leaderboard.html"
#: the exported final model (a saved-model folder)
FINAL_MODEL_DIR = "final_model"
#: in a saved-model folder: the fitted pipeline
MODEL_FILE = "model.joblib"
#: in a saved-model folder: what the model is and how to feed it
MODEL_META_FILE = "model.json"
#: beside the benchmark folders (results/cache): the computed features
FEATURE_CACHE_DIR = "cache"

#: closed status vocabulary of a result row
#: ``eliminated``: a raced pair a paired test showed worse than the leader stopped receiving
#: folds (:mod:`benchmark.execution.racing`); its row says after how many folds and with which p
STATUSES = ("done", "skip", "error", "timeout", "eliminated")

#: metric -> higher is better; the harness computes them, families never do
METRICS: dict[str, bool] = {
    "accuracy": True,  # track level (segment sets: mean segment probability)
    "balanced_accuracy": True,
    "macro_f1": True,
    "log_loss": False,
    "accuracy_vote": True,  # track level by majority vote of segments (= accuracy if unsegmented)
}

#: metadata keys of a FoldOutcome field (``dataclasses.field(metadata=...)``): the field list
#: is written once, in the class, and every view of an outcome (result row and columns, JSON,
#: MLflow's fold metrics and outcome.json) is derived from it
#: ``columns``: the result columns the field spreads into (absent: one column, its name;
#: empty: none); ``encode``: value -> those columns' values (absent: the value as it is);
#: ``scored``: logged as a per-fold metric; ``summary``: False keeps it out of outcome.json;
#: ``table``: a table of its own (``predictions.parquet``), never a result column
COLUMNS, ENCODE, SCORED, SUMMARY, TABLE = "columns", "encode", "scored", "summary", "table"
_TABLE: dict[str, Any] = {COLUMNS: (), SUMMARY: False, TABLE: True}


@dataclass(frozen=True, order=True)
class PairKey:
    """One (feature set, family, protocol) combination: an MLflow parent run, a leaderboard row."""

    feature_set: str
    family: str
    protocol: str

    @property
    def label(self) -> str:
        return f"{self.feature_set} · {self.family} · {self.protocol}"

    @property
    def slug(self) -> str:
        return f"{self.feature_set}__{self.family}__{self.protocol}"

    def as_dict(self) -> dict[str, str]:
        """Field name -> value: the pair's result columns, and its MLflow params and tags."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: the dedup key of a result row: the pair's fields and the outer fold
RESULT_KEY = (*(f.name for f in fields(PairKey)), "fold")


@dataclass
class FoldOutcome:
    """What one (pair, outer fold) job produced: one result row plus its OOF predictions.

    Field order is result-column order (see :data:`RESULT_COLUMNS`)."""

    pair: PairKey = field(
        metadata={
            COLUMNS: tuple(f.name for f in fields(PairKey)),
            ENCODE: PairKey.as_dict,
            SUMMARY: False,
        }
    )
    fold: int = field(metadata={SUMMARY: False})
    status: str
    message: str = field(default="", metadata={ENCODE: lambda m: {"message": m[:500]}})
    metrics: dict[str, float] = field(
        default_factory=dict,
        metadata={
            COLUMNS: tuple(METRICS),
            ENCODE: lambda d: {m: float(d.get(m, math.nan)) for m in METRICS},
        },
    )
    #: best trial's inner-CV accuracy on the outer training part
    inner_accuracy: float = field(default=math.nan, metadata={SCORED: True})
    #: completed trials of the study
    n_trials: int = field(default=0, metadata={SCORED: True})
    #: the trial budget this outcome satisfies: the study's planned trials, or the finished
    #: count when a run's wall-clock budget ended the study early (a rerun with more budget
    #: continues it); None: stored before budgets existed (reused as it is)
    trial_budget: int | None = field(default=None, metadata={SUMMARY: False})
    n_pruned: int = field(default=0, metadata={SCORED: True})
    #: tracks in the outer training part
    n_train: int = 0
    #: tracks scored
    n_test: int = 0
    #: scored tracks / tracks of the protocol's test part
    coverage: float = field(default=math.nan, metadata={SCORED: True})
    tune_s: float = field(default=0.0, metadata={SCORED: True})
    #: refit of the best params on the whole outer training part
    fit_s: float = field(default=0.0, metadata={SCORED: True})
    predict_s: float = field(default=0.0, metadata={SCORED: True})
    #: the best params (a JSON column; also spread into ``p_<param>`` columns by :meth:`row`)
    params: dict[str, Any] = field(
        default_factory=dict,
        metadata={ENCODE: lambda p: {"params": json.dumps(p, sort_keys=True, default=str)}},
    )
    #: an ensemble's members and their weights ("feature set · family" -> weight); empty for
    #: a pair
    members: dict[str, float] = field(
        default_factory=dict,
        metadata={
            ENCODE: lambda m: {"members": json.dumps(m, sort_keys=True) if m else ""},
            SUMMARY: False,
        },
    )
    #: the run's seed column sits before it (the order results.parquet has always had)
    study_name: str = field(default="", metadata={COLUMNS: ("seed", "study_name")})
    #: per scored track: track_id, y_true, y_pred, correct, proba_<genre>...
    predictions: pd.DataFrame | None = field(default=None, metadata=_TABLE)
    #: the best params' out-of-fold predictions on the outer *training* part (one row per
    #: training track, with its ``inner_fold``): what an ensemble learns its weights from
    inner_predictions: pd.DataFrame | None = field(default=None, metadata=_TABLE)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    def row(self, **context: Any) -> dict[str, Any]:
        """The result row; ``context`` adds benchmark, dataset, seed, digests."""
        out: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
        out.update(context)
        for f in fields(self):
            value = getattr(self, f.name)
            if ENCODE in f.metadata:
                out.update(f.metadata[ENCODE](value))
            elif f.metadata.get(COLUMNS, True):
                out[f.name] = value
        for name, value in self.params.items():
            out[f"p_{name}"] = value
        return out

    def scores(self) -> dict[str, float]:
        """The fold's numbers MLflow logs per fold: its metrics, then the ``scored`` fields."""
        out = dict(self.metrics)
        out.update({f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get(SCORED)})
        return out

    def summary(self) -> dict[str, Any]:
        """The outcome at a glance (MLflow's ``outcome.json``): no tables, the pair as label."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get(SUMMARY, True)}
        out.update(pair=self.pair.label, fold=self.fold)
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON form (stored with the finished study, so any process can reuse the outcome)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["pair"] = list(astuple(self.pair))
        for f in fields(self):
            if _is_table(f):
                table = out[f.name]
                out[f.name] = None if table is None else table.to_dict(orient="list")
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FoldOutcome:
        import pandas as pd

        d = dict(data)
        d["pair"] = PairKey(*d["pair"])
        tables = {f.name: d.pop(f.name, None) for f in fields(cls) if _is_table(f)}
        out = cls(**d)
        for name, table in tables.items():
            setattr(out, name, pd.DataFrame(table) if table is not None else None)
        return out

    @classmethod
    def from_row(
        cls, row: Mapping[str, Any], predictions: pd.DataFrame | None = None
    ) -> FoldOutcome:
        """The outcome behind a result row (:meth:`row` undone; the tables are not in a row,
        ``predictions`` gives the outer ones): what MLflow logs of an ensemble's fold, which no
        Optuna study stores."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if _is_table(f):
                continue
            if f.name == "pair":
                values["pair"] = PairKey(*(str(row[c]) for c in f.metadata[COLUMNS]))
            elif f.name == "metrics":
                values["metrics"] = {
                    m: float(row[m]) for m in METRICS if _cell(row.get(m), None) is not None
                }
            elif f.name in ("params", "members"):
                values[f.name] = json.loads(_cell(row.get(f.name), None) or "{}")
            else:
                values[f.name] = _cell(row.get(f.name), f.default)
        values["fold"] = int(values["fold"])
        return cls(**values, predictions=predictions)


def _is_table(f: Field[Any]) -> bool:
    return bool(f.metadata.get(TABLE, False))


def _result_columns() -> tuple[str, ...]:
    """The run's context columns (:meth:`FoldOutcome.row`'s ``context``) around the columns of
    the outcome's own fields, in field order."""
    own = [name for f in fields(FoldOutcome) for name in f.metadata.get(COLUMNS, (f.name,))]
    return ("benchmark", "dataset", *own, "config_digest", "data_checksum")


RESULT_COLUMNS = _result_columns()


#: columns of ``trials.parquet``
TRIAL_COLUMNS = (
    *RESULT_KEY,
    "study_name",
    "number",
    "state",  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING (Optuna's names)
    "value",  # inner-CV accuracy of a complete trial
    "params",  # JSON
    "intermediate",  # JSON {step: running inner-CV value}
    "duration_s",
)

PREDICTION_KEY = RESULT_KEY


def predictions_frame(outcomes: Iterable[FoldOutcome], *, inner: bool = False) -> pd.DataFrame:
    """``predictions.parquet`` (or, with ``inner``, ``inner_predictions.parquet``) of
    ``outcomes``, sorted by pair and fold."""
    import pandas as pd

    frames = []
    for o in outcomes:
        df = o.inner_predictions if inner else o.predictions
        if df is None:
            continue
        df = df.copy()
        for name, value in zip(
            reversed(PREDICTION_KEY),
            (o.fold, o.pair.protocol, o.pair.family, o.pair.feature_set),
            strict=True,
        ):
            df.insert(0, name, value)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[*PREDICTION_KEY, "track_id"])
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(list(PREDICTION_KEY), kind="stable").reset_index(drop=True)


def trials_frame(studies: Iterable[tuple[PairKey, int, str, Sequence[Any]]]) -> pd.DataFrame:
    """``trials.parquet`` from ``(pair, fold, study name, the study's FrozenTrials)``."""
    import pandas as pd

    rows = []
    for pair, fold, name, trials in studies:
        for t in trials:
            end, start = t.datetime_complete, t.datetime_start
            rows.append(
                {
                    **pair.as_dict(),
                    "fold": fold,
                    "study_name": name,
                    "number": int(t.number),
                    "state": t.state.name,
                    "value": math.nan if t.value is None else float(t.value),
                    "params": json.dumps(t.params, sort_keys=True, default=str),
                    "intermediate": json.dumps(
                        {str(k): v for k, v in sorted(t.intermediate_values.items())}
                    ),
                    "duration_s": (end - start).total_seconds() if end and start else math.nan,
                }
            )
    df = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS))
    return df.sort_values([*RESULT_KEY, "number"], kind="stable").reset_index(drop=True)


def proba_columns(classes: Sequence[str]) -> list[str]:
    return [f"proba_{c}" for c in classes]


def results_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows in the documented column order: fixed columns, then sorted ``p_`` columns."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    for c in RESULT_COLUMNS:
        if c not in df.columns:
            df[c] = None
    extra = sorted(c for c in df.columns if c not in RESULT_COLUMNS)
    df = df[[*RESULT_COLUMNS, *extra]]
    # mixed-type p_ columns (None, str, float) do not round-trip through parquet: store as text
    for c in extra:
        if df[c].map(type).nunique() > 1 or df[c].dtype == object:
            df[c] = df[c].map(lambda v: None if v is None else str(v)).astype("string")
    return df.sort_values(list(RESULT_KEY), kind="stable").reset_index(drop=True)


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write a parquet file atomically (temporary file + rename): a killed run never leaves a
    half-written table behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path)


#: the result columns that measure how long work took: they differ between two runs of the
#: same work, so nothing keyed on a table's content may include them
TIMING_COLUMNS = ("tune_s", "fit_s", "predict_s")


def table_digest(*tables: pd.DataFrame) -> str:
    """Hash of the tables' values, column names and row order, timings, empty columns and the
    ``p_`` copies of ``params`` left out: equal for the same results however long they took
    to compute, and whichever other rows shared their file (what reuse is keyed on)."""
    import hashlib

    import pandas as pd

    h = hashlib.sha256()
    for df in tables:
        # ``p_`` columns repeat ``params`` (and their text form depends on the other rows of
        # the file: a pair's missing ensemble parameter reads back as "nan")
        df = df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS or c.startswith("p_")])
        df = df.loc[:, df.notna().any().to_numpy()]  # a column of nothing is no column
        h.update(repr((list(df.columns), len(df))).encode())
        if len(df):
            canon = pd.DataFrame({c: _canonical(df[c]) for c in df.columns})
            h.update(pd.util.hash_pandas_object(canon, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _canonical(col: pd.Series) -> pd.Series:
    """A column as its values, not its dtype: numbers as float64 (an int column read back as
    float hashes the same), text as str (Arrow or object)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col):
        return pd.Series(col.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    return col.astype("string[python]").reset_index(drop=True)


def _cell(value: Any, default: Any) -> Any:
    """A result cell as the field whose ``default`` is given takes it (missing: the default)."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None if default is MISSING else default
    if isinstance(default, str):
        return str(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int) or (default is None and isinstance(value, int | np.integer)):
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def nan_to_none(value: Any) -> Any:
    """JSON has no NaN: map NaN floats to None."""
    import numpy as np

    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return value


def summarize_pairs(results: pd.DataFrame, baseline: Mapping[str, str]) -> pd.DataFrame:
    """One row per (pair, protocol): mean over done folds, best first within each protocol.

    Columns: protocol, feature_set, family, status (done if every fold is done, else the
    worst status), folds ("done/total"), the mean of each metric, accuracy_std, n_trials (sum),
    fit_s (mean), is_baseline, delta (mean accuracy minus the baseline's, same protocol).
    """
    import pandas as pd

    rows = []
    for (protocol, fs, fam), g in results.groupby(["protocol", "feature_set", "family"], sort=True):
        done = g[g["status"] == "done"]
        statuses = set(g["status"])
        status = (
            "done"
            if statuses == {"done"}
            else next(
                s for s in ("error", "timeout", "eliminated", "skip", "done") if s in statuses
            )
        )
        row: dict[str, Any] = {
            "protocol": protocol,
            "feature_set": fs,
            "family": fam,
            "status": status,
            "folds": f"{len(done)}/{len(g)}",
            # one split has no spread to report (not a spread of zero)
            "accuracy_std": float(done["accuracy"].std(ddof=1)) if len(done) > 1 else math.nan,
            "n_trials": float(done["n_trials"].sum()),
            "fit_s": float(done["fit_s"].mean()) if len(done) else math.nan,
            "is_baseline": fs == baseline.get("feature_set") and fam == baseline.get("family"),
        }
        for metric in METRICS:
            row[metric] = float(done[metric].mean()) if len(done) else math.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    base = out[out["is_baseline"]].set_index("protocol")["accuracy"]
    out["delta"] = [
        r.accuracy - base[r.protocol] if r.protocol in base.index else math.nan
        for r in out.itertuples()
    ]
    out["_done"] = out["status"] == "done"
    out = out.sort_values(["protocol", "_done", "accuracy"], ascending=[True, False, False])
    return out.drop(columns="_done").reset_index(drop=True)
