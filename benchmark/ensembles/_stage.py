"""The ensemble stage: after tuning, combine the tuned pairs of every feature set, per
protocol and outer fold, from the results files alone.

For an outer fold, the candidate members are the pairs done on it whose inner out-of-fold
predictions (``inner_predictions.parquet``) cover enough of its training part. Each method
learns its members and weights from those rows only — the outer training part, each row
predicted by a model that never saw it — and then combines the members' predictions of the
outer test part (``predictions.parquet``), which nothing here looks at before. The rows it
writes are ordinary result rows (feature set :data:`ENSEMBLE_FEATURE_SET`, family = method),
so stats, report and export treat them like any pair.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.ensembles._methods import METHODS, EnsembleMethod
from benchmark.errors import ConfigError
from benchmark.results import (
    ENSEMBLES_DIR,
    ENSEMBLES_KEY_FILE,
    INNER_PREDICTIONS_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    FoldOutcome,
    PairKey,
    predictions_frame,
    read_table,
    results_frame,
    table_digest,
    write_table,
)
from benchmark.scoring import TrackPredictions, score_tracks

__all__ = [
    "ENSEMBLE_FEATURE_SET",
    "EnsembleSettings",
    "FoldPool",
    "TrainingPool",
    "build_pool",
    "ensemble_outcomes",
    "fit_fold",
    "left_out_for_coverage",
    "members_of",
    "run_ensemble_stage",
    "training_pool",
]

log = logging.getLogger(__name__)

#: the feature-set name of every ensemble row ("ensemble · greedy", …)
ENSEMBLE_FEATURE_SET = "ensemble"


@dataclass(frozen=True)
class EnsembleSettings:
    """The ``ensembles:`` key of a config (``false`` or ``null`` turns the stage off)."""

    #: methods to run, each a candidate of its own (names of :data:`METHODS`)
    methods: tuple[str, ...] = ("greedy", "stacking", "top_k")
    #: greedy selection: steps (members picked with replacement) and what it minimises
    size: int = 25
    metric: str = "log_loss"
    #: soft vote of the k best pairs by inner OOF accuracy
    top_k: int = 5
    #: a pair joins a fold's pool only if its inner predictions cover this share of the
    #: training tracks the best-covered pair has (audio sets on a partial copy cover few)
    min_coverage: float = 0.9

    @classmethod
    def from_config(cls, value: Any, source: str = "config") -> EnsembleSettings | None:
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: ensembles must be a mapping, true or false")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown ensembles key(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        kwargs = dict(value)
        if "methods" in kwargs:
            methods = kwargs["methods"]
            kwargs["methods"] = (methods,) if isinstance(methods, str) else tuple(methods)
        out = cls(**kwargs)
        out.validate(source)
        return out

    def validate(self, source: str) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ConfigError(
                f"{source}: unknown ensemble method {bad[0] if bad else '(none)'!r}; known: "
                f"{', '.join(METHODS)}"
            )
        for key in ("size", "top_k"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{source}: ensembles.{key} must be an integer >= 1")
        if self.metric not in ("log_loss", "accuracy"):
            raise ConfigError(f"{source}: ensembles.metric must be log_loss or accuracy")
        if not 0 < float(self.min_coverage) <= 1:
            raise ConfigError(f"{source}: ensembles.min_coverage must lie in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": list(self.methods),
            "size": self.size,
            "metric": self.metric,
            "top_k": self.top_k,
            "min_coverage": self.min_coverage,
        }

    def method(self, name: str) -> EnsembleMethod:
        params: dict[str, dict[str, Any]] = {
            "greedy": {"size": self.size, "metric": self.metric},
            "top_k": {"k": self.top_k},
        }
        return METHODS[name](**params.get(name, {}))


@dataclass
class TrainingPool:
    """The members of one (protocol, outer fold) and their inner OOF probability stacks:
    everything a method learns from."""

    protocol: str
    fold: int
    classes: list[str]
    members: list[PairKey]
    train_tracks: np.ndarray
    P_train: np.ndarray  # members × train tracks × classes
    y_train: np.ndarray
    groups: np.ndarray  # inner fold of each train track
    left_out: dict[str, str] = field(default_factory=dict)


@dataclass
class FoldPool(TrainingPool):
    """A training pool and the members' predictions of the outer test part."""

    test_tracks: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    P_test: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # NaN: lacks it
    y_test: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))
    n_test_part: int = 0  # tracks of the protocol's test part (for coverage)


def _classes(table: pd.DataFrame) -> list[str]:
    return [c.removeprefix("proba_") for c in table.columns if c.startswith("proba_")]


def _label(key: PairKey) -> str:
    return f"{key.feature_set} · {key.family}"


def _stack(frames: list[pd.DataFrame], tracks: np.ndarray, cols: list[str]) -> np.ndarray:
    out = np.full((len(frames), len(tracks), len(cols)), np.nan)
    for i, f in enumerate(frames):
        out[i] = f.set_index("track_id").reindex(tracks)[cols].to_numpy(dtype=float)
    return out


#: why a pair is left out of a fold's pool: its inner predictions cover fewer training tracks
#: than ``min_coverage`` of the best-covered pair's (an audio set on a partial copy). An
#: ensemble combines one coverage group, never pairs scored on different tracks.
_FEWER_TRACKS = "inner predictions for {n} of {most} training tracks"
_LEFT_OUT_FEWER = re.compile(
    r"(?:^left out: |; )([^;]+?) \(" + _FEWER_TRACKS.format(n=r"\d+", most=r"\d+") + r"\)"
)


def left_out_for_coverage(message: str) -> list[str]:
    """The pairs an ensemble row's message says were left out for covering fewer tracks."""
    return _LEFT_OUT_FEWER.findall(message or "")


def training_pool(
    protocol: str,
    fold: int,
    keys: list[PairKey],
    inner: pd.DataFrame,
    min_coverage: float,
    left_out: dict[str, str] | None = None,
) -> TrainingPool | str:
    """The members among ``keys`` whose inner predictions cover enough training tracks,
    stacked on the tracks they all predicted; or why there is none."""
    left_out = dict(left_out or {})
    classes = _classes(inner)
    by_pair = dict(tuple(inner.groupby(["feature_set", "family"], sort=False)))
    present = []
    for k in keys:
        if (k.feature_set, k.family) in by_pair:
            present.append(k)
        else:
            left_out[_label(k)] = "no inner predictions"
    if not present:
        return "no pair has inner out-of-fold predictions on this fold"
    sizes = {k: len(by_pair[(k.feature_set, k.family)]) for k in present}
    most = max(sizes.values())
    members = []
    for k in present:
        if sizes[k] < min_coverage * most:
            left_out[_label(k)] = _FEWER_TRACKS.format(n=sizes[k], most=most)
        else:
            members.append(k)
    if len(members) < 2:
        return f"fewer than 2 pairs to combine ({len(members)})"
    frames = [by_pair[(k.feature_set, k.family)] for k in members]
    common = set(frames[0]["track_id"]).intersection(*(set(f["track_id"]) for f in frames[1:]))
    first = frames[0].set_index("track_id")
    train_tracks = np.array(sorted(common), dtype=object)
    index = {c: i for i, c in enumerate(classes)}
    return TrainingPool(
        protocol=protocol,
        fold=int(fold),
        classes=classes,
        members=members,
        train_tracks=train_tracks,
        P_train=_stack(frames, train_tracks, [f"proba_{c}" for c in classes]),
        y_train=first.loc[train_tracks, "y_true"].map(index).to_numpy(dtype=int),
        groups=first.loc[train_tracks, "inner_fold"].to_numpy(dtype=int),
        left_out=left_out,
    )


def build_pool(
    protocol: str,
    fold: int,
    rows: pd.DataFrame,
    inner: pd.DataFrame,
    test: pd.DataFrame,
    min_coverage: float,
) -> FoldPool | str:
    """The pool of one outer fold (``rows``: its done result rows), or why there is none."""
    by_pair_test = dict(tuple(test.groupby(["feature_set", "family"], sort=False)))
    keys, missing = [], {}
    for r in rows.itertuples():
        key = PairKey(r.feature_set, r.family, protocol)
        if (key.feature_set, key.family) in by_pair_test:
            keys.append(key)
        else:
            missing[_label(key)] = "no test predictions"
    pool = training_pool(protocol, fold, keys, inner, min_coverage, missing)
    if isinstance(pool, str):
        return pool
    test_frames = [by_pair_test[(k.feature_set, k.family)] for k in pool.members]
    truth = pd.concat([f[["track_id", "y_true"]] for f in test_frames]).drop_duplicates("track_id")
    truth = truth.sort_values("track_id", kind="stable")
    tracks = truth["track_id"].to_numpy(dtype=object)
    index = {c: i for i, c in enumerate(pool.classes)}
    n_part = rows["n_test"] / rows["coverage"].replace(0, np.nan)
    return FoldPool(
        **vars(pool),
        test_tracks=tracks,
        P_test=_stack(test_frames, tracks, [f"proba_{c}" for c in pool.classes]),
        y_test=truth["y_true"].map(index).to_numpy(dtype=int),
        n_test_part=int(round(float(np.nanmax(n_part)))) if n_part.notna().any() else len(truth),
    )


def fit_fold(pool: FoldPool, name: str, settings: EnsembleSettings) -> FoldOutcome:
    """One method on one fold's pool: learn on the inner rows, score the outer test part."""
    t0 = time.perf_counter()
    method = settings.method(name).fit(pool.P_train, pool.y_train, pool.groups)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    proba = method.predict_proba(pool.P_test)
    weights = method.weights()
    # majority vote of the members' top genres, weighted like the combination
    votes = np.zeros_like(proba)
    for w, P in zip(weights, pool.P_test, strict=True):
        present = ~np.isnan(P).any(axis=1)
        top = np.where(present, np.nan_to_num(P).argmax(axis=1), 0)
        np.add.at(votes, (np.flatnonzero(present), top[present]), w)
    vote = (votes + proba * 1e-6).argmax(axis=1)
    pred = TrackPredictions(pool.test_tracks, proba, vote)
    metrics = score_tracks(pool.y_test, pred, len(pool.classes))
    predict_s = time.perf_counter() - t1
    inner_fit = method.predict_proba(pool.P_train)
    members = {
        _label(k): round(float(w), 6) for k, w in zip(pool.members, weights, strict=True) if w > 0
    }
    params: dict[str, Any] = {k: v for k, v in method.params.items() if k != "grid"}
    if hasattr(method, "C_"):
        params["C"] = method.C_
    message = ""
    if pool.left_out:
        message = "left out: " + "; ".join(f"{k} ({v})" for k, v in sorted(pool.left_out.items()))
    return FoldOutcome(
        pair=PairKey(ENSEMBLE_FEATURE_SET, name, pool.protocol),
        fold=pool.fold,
        status="done",
        message=message,
        metrics=metrics,
        # in-sample for the combiner (it was fit on these rows): not an honest estimate
        inner_accuracy=float(np.mean(inner_fit.argmax(axis=1) == pool.y_train)),
        n_train=len(pool.train_tracks),
        n_test=len(pool.test_tracks),
        coverage=len(pool.test_tracks) / max(1, pool.n_test_part),
        fit_s=fit_s,
        predict_s=predict_s,
        params=params,
        members=members,
        predictions=pred.frame(pool.y_test, pool.classes),
    )


def ensemble_outcomes(
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    inner: pd.DataFrame,
    settings: EnsembleSettings,
) -> list[FoldOutcome]:
    """Every method on every (protocol, outer fold) of the pairs' results; a fold with
    nothing to combine gets a ``skip`` row per method, with the reason."""
    pairs = results[(results["feature_set"] != ENSEMBLE_FEATURE_SET)]
    if pairs.groupby(["feature_set", "family"]).ngroups < 2:
        return []  # one pair: nothing to combine, anywhere
    outcomes: list[FoldOutcome] = []
    # every fold gets its rows, also one no pair finished (a run's budget spent before it):
    # an ensemble is then as incomplete as the pairs, never silently done on fewer folds
    for (protocol, fold), fold_rows in pairs[pairs["fold"] >= 0].groupby(
        ["protocol", "fold"], sort=True
    ):
        rows = fold_rows[fold_rows["status"] == "done"]
        sel_inner = inner[(inner["protocol"] == protocol) & (inner["fold"] == fold)]
        sel_test = predictions[
            (predictions["protocol"] == protocol) & (predictions["fold"] == fold)
        ]
        pool: Any = "no pair is done on this fold"
        if len(rows):
            pool = build_pool(
                str(protocol), int(fold), rows, sel_inner, sel_test, settings.min_coverage
            )
        for name in settings.methods:
            if isinstance(pool, str):
                key = PairKey(ENSEMBLE_FEATURE_SET, name, str(protocol))
                outcomes.append(FoldOutcome(key, int(fold), "skip", pool))
            else:
                outcomes.append(fit_fold(pool, name, settings))
    return outcomes


def run_ensemble_stage(
    results_dir: Path, settings: EnsembleSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the results files, add (or replace) the ensemble rows, write them back atomically.
    Deterministic, so a rerun writes the same rows. Returns (results, predictions)."""
    results_dir = Path(results_dir)
    results = read_table(results_dir / RESULTS_FILE)
    predictions = read_table(results_dir / PREDICTIONS_FILE)
    inner_path = results_dir / INNER_PREDICTIONS_FILE
    if not inner_path.is_file():
        log.warning("no %s: no ensembles", inner_path.name)
        return results, predictions
    inner = read_table(inner_path)
    t0 = time.perf_counter()
    pairs = results[results["feature_set"] != ENSEMBLE_FEATURE_SET]
    pair_preds = predictions[predictions["feature_set"] != ENSEMBLE_FEATURE_SET]
    key = _stage_key(pairs, pair_preds, inner, settings)
    stored = _stored_stage(results_dir, key)
    if stored is not None:
        rows, ens_preds = stored
        log.info("ensembles: inputs unchanged (key %s): %d stored rows kept", key, len(rows))
    else:
        outcomes = ensemble_outcomes(pairs, pair_preds, inner, settings)
        if not outcomes:
            return pairs, pair_preds
        context_cols = ["benchmark", "dataset", "seed", "config_digest", "data_checksum"]
        context = {c: pairs[c].iloc[0] for c in context_cols if c in pairs and len(pairs)}
        rows = results_frame(o.row(**context) for o in outcomes)
        ens_preds = predictions_frame(outcomes)
        _store_stage(results_dir, key, rows, ens_preds)
        log.info(
            "ensembles: %d rows (%d done) over %d protocol folds in %.1f s",
            len(outcomes),
            sum(o.status == "done" for o in outcomes),
            len({(o.pair.protocol, o.fold) for o in outcomes}),
            time.perf_counter() - t0,
        )
    merged = results_frame([*pairs.to_dict(orient="records"), *rows.to_dict(orient="records")])
    write_table(merged, results_dir / RESULTS_FILE)
    preds = pd.concat([pair_preds, ens_preds], ignore_index=True)
    write_table(preds, results_dir / PREDICTIONS_FILE)
    return merged, preds


def _stage_key(
    pairs: pd.DataFrame, pair_preds: pd.DataFrame, inner: pd.DataFrame, settings: EnsembleSettings
) -> str:
    """What the stage's rows are a function of: the pairs' rows and predictions (timings left
    out), the inner OOF predictions, the settings and the code."""
    import dataclasses
    import hashlib

    from benchmark.paths import code_digest

    what = {
        "tables": table_digest(pairs, pair_preds, inner),
        "settings": dataclasses.asdict(settings),
        "code": code_digest(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stored_stage(results_dir: Path, key: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The rows and predictions the stage stored for ``key``, or None (none, another key, or
    unreadable: the stage then runs again)."""
    folder = results_dir / ENSEMBLES_DIR
    try:
        if json.loads((folder / ENSEMBLES_KEY_FILE).read_text()).get("key") != key:
            return None
        return read_table(folder / RESULTS_FILE), read_table(folder / PREDICTIONS_FILE)
    except (OSError, ValueError, KeyError):
        return None


def _store_stage(results_dir: Path, key: str, rows: pd.DataFrame, preds: pd.DataFrame) -> None:
    folder = results_dir / ENSEMBLES_DIR
    (folder / ENSEMBLES_KEY_FILE).unlink(missing_ok=True)  # the tables first, the key last
    write_table(rows, folder / RESULTS_FILE)
    write_table(preds, folder / PREDICTIONS_FILE)
    (folder / ENSEMBLES_KEY_FILE).write_text(json.dumps({"key": key}))


def members_of(row: Mapping[str, Any]) -> dict[str, float]:
    """The members and weights of an ensemble result row (empty for a pair)."""
    raw = row.get("members")
    if not raw or (isinstance(raw, float) and math.isnan(raw)):
        return {}
    return dict(json.loads(raw))
