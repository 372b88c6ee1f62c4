"""The results files a run writes from its fold outcomes (the schema is :mod:`benchmark.results`).

``genrebench run``, the worker that assembles a shared benchmark and ``genrebench status
--write`` all end here, so the files are the same whoever wrote them: results, predictions,
inner predictions and the counted trials, read from the Optuna storage once so that no later
stage needs the storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from benchmark.results import (
    INNER_PREDICTIONS_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    TRIALS_FILE,
    FoldOutcome,
    PairKey,
    predictions_frame,
    read_table,
    results_frame,
    trials_frame,
    write_table,
)
from benchmark.storage import open_storage
from benchmark.tuning.trial_budget import counted_trials

__all__ = ["write_outcome_files", "write_trials_file"]


def write_outcome_files(
    results_dir: Path,
    outcomes: list[FoldOutcome],
    context: dict[str, Any],
    storage: optuna.storages.BaseStorage | str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the tables every later stage reads (:mod:`benchmark.results`): results,
    predictions, inner predictions and trials. Returns (results, predictions)."""
    results = results_frame(o.row(**context) for o in outcomes)
    predictions = predictions_frame(outcomes)
    write_table(results, results_dir / RESULTS_FILE)
    write_table(predictions, results_dir / PREDICTIONS_FILE)
    write_table(predictions_frame(outcomes, inner=True), results_dir / INNER_PREDICTIONS_FILE)
    write_trials_file(results_dir, storage, results)
    return results, predictions


def write_trials_file(
    results_dir: Path,
    storage: optuna.storages.BaseStorage | str,
    results: pd.DataFrame | None = None,
) -> Path:
    """``trials.parquet``: every counted trial of the studies named in ``results.parquet``,
    read from the Optuna storage once, so that no later stage needs the storage."""
    if results is None:
        results = read_table(Path(results_dir) / RESULTS_FILE)
    if isinstance(storage, str):
        storage = open_storage(storage)
    named = results[results["study_name"].fillna("").astype(str) != ""]
    studies = [
        (PairKey(r.feature_set, r.family, r.protocol), int(r.fold), str(r.study_name))
        for r in named.itertuples()
    ]
    table = trials_frame((*key, counted_trials(storage, key[2])) for key in studies)
    path = Path(results_dir) / TRIALS_FILE
    write_table(table, path)
    return path
