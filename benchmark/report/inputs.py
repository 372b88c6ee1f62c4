"""What the report reads: the files one run wrote under ``results/<benchmark>/``, and nothing else
(never the Optuna storage: ``trials.parquet`` holds the histories).

Only ``results.parquet`` is required; every other file that is missing or unreadable becomes a
note on the page saying what could therefore not be shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from benchmark.config import DEFAULTS
from benchmark.errors import GenrebenchError
from benchmark.results import PREDICTIONS_FILE, RESULTS_FILE, RUN_FILE, SPLITS_FILE, TRIALS_FILE

__all__ = ["DEFAULT_BASELINE", "Inputs", "Trials", "find_results_dir", "load_inputs"]

#: used only when run.json names no baseline: the config default, read from the config's
#: one list of defaults
DEFAULT_BASELINE: Mapping[str, str] = MappingProxyType(DEFAULTS["baseline"])


def find_results_dir(path: str | Path | None = None, *, root: str | Path = "results") -> Path:
    """The benchmark folder to report on.

    ``path`` holding ``results.parquet`` is used as is; a folder of benchmark folders (or, with
    no ``path``, ``root``) gives its most recently written benchmark.
    """
    base = Path(path) if path is not None else Path(root)
    if (base / RESULTS_FILE).is_file():
        return base
    if not base.is_dir():
        raise GenrebenchError(
            f"no results folder {base}: run `genrebench run` first, or name a results/<benchmark> "
            "folder"
        )
    candidates = [p.parent for p in base.glob(f"*/{RESULTS_FILE}")]
    if not candidates:
        raise GenrebenchError(
            f"no results.parquet in {base} or its subfolders: run `genrebench run` first"
        )
    return max(candidates, key=lambda p: ((p / RESULTS_FILE).stat().st_mtime, str(p)))


@dataclass
class Inputs:
    results_dir: Path
    results: pd.DataFrame
    predictions: pd.DataFrame
    splits: pd.DataFrame
    run: dict[str, Any]
    baseline: dict[str, str]
    seed: int
    notes: list[str] = field(default_factory=list)


def _read_parquet(path: Path, notes: list[str], what: str) -> pd.DataFrame | None:
    if not path.is_file():
        notes.append(f"{path.name} is missing: {what}")
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # a corrupt file must not take the whole page down
        notes.append(f"{path.name} could not be read ({type(exc).__name__}: {exc}): {what}")
        return None


def _read_results(results_dir: Path, notes: list[str]) -> pd.DataFrame:
    """``results.parquet``, the one file the page cannot do without; optional columns that are
    missing are added empty (and noted)."""
    path = results_dir / RESULTS_FILE
    if not path.is_file():
        raise GenrebenchError(f"no results.parquet in {results_dir}: run `genrebench run` first")
    try:
        results = pd.read_parquet(path)
    except Exception as exc:
        raise GenrebenchError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    for col in ("feature_set", "family", "protocol", "fold", "status"):
        if col not in results.columns:
            raise GenrebenchError(f"{path} lacks the column {col!r}: not a genrebench results file")
    for col in ("accuracy", "balanced_accuracy", "macro_f1", "n_train", "n_test", "message"):
        if col not in results.columns:
            results[col] = math.nan if col != "message" else ""
            notes.append(f"results.parquet lacks {col!r}")
    return results


def _read_run(results_dir: Path, notes: list[str]) -> dict[str, Any]:
    run_path = results_dir / RUN_FILE
    if not run_path.is_file():
        notes.append("run.json is missing: provenance unknown (was the run interrupted?)")
        return {}
    try:
        return json.loads(run_path.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"run.json could not be read ({exc}): provenance unknown")
        return {}


def _baseline_of(run: Mapping[str, Any], notes: list[str]) -> dict[str, str]:
    cfg_base = (run.get("config") or {}).get("baseline")
    if isinstance(cfg_base, Mapping) and {"feature_set", "family"} <= set(cfg_base):
        return {"feature_set": str(cfg_base["feature_set"]), "family": str(cfg_base["family"])}
    baseline = dict(DEFAULT_BASELINE)
    if run:
        notes.append(f"run.json names no baseline: assuming {baseline}")
    return baseline


def _seed_of(run: Mapping[str, Any]) -> int:
    seed = run.get("seed", (run.get("config") or {}).get("seed", DEFAULTS["seed"]))
    try:
        return int(seed)
    except (TypeError, ValueError):
        return 0


def load_inputs(results_dir: Path) -> Inputs:
    """The results files of one benchmark; only ``results.parquet`` is required."""
    results_dir = Path(results_dir)
    notes: list[str] = []
    results = _read_results(results_dir, notes)
    predictions = _read_parquet(
        results_dir / PREDICTIONS_FILE,
        notes,
        "no confidence intervals, McNemar tests or confusion matrices",
    )
    if predictions is None:
        predictions = pd.DataFrame(
            columns=["feature_set", "family", "protocol", "fold", "track_id", "correct"]
        )
    splits = _read_parquet(results_dir / SPLITS_FILE, notes, "split sizes unknown")
    run = _read_run(results_dir, notes)
    return Inputs(
        results_dir=results_dir,
        results=results,
        predictions=predictions,
        splits=splits if splits is not None else pd.DataFrame(),
        run=run,
        baseline=_baseline_of(run, notes),
        seed=_seed_of(run),
        notes=notes,
    )


class Trials:
    """The trials of named studies, from ``trials.parquet`` (the report never opens the
    Optuna storage: the results files are its whole input)."""

    def __init__(self, results_dir: Path) -> None:
        path = Path(results_dir) / TRIALS_FILE
        self.error = ""
        self._by_study: dict[str, pd.DataFrame] = {}
        if not path.is_file():
            self.error = "no trials.parquet (written by genrebench run; `genrebench report "
            self.error += "--storage URL` writes it from the Optuna storage)"
            return
        try:
            table = pd.read_parquet(path)
        except Exception as exc:
            self.error = f"trials.parquet could not be read: {type(exc).__name__}: {exc}"[:300]
            return
        self._by_study = {str(k): g for k, g in table.groupby("study_name", sort=False)}

    def trials(self, name: str) -> list[dict[str, Any]] | None:
        """Finished trials of a study as ``{number, value, state}``; None if unavailable."""
        g = self._by_study.get(name)
        if g is None:
            return None
        out = []
        for t in g.sort_values("number").itertuples():
            if t.state == "COMPLETE" and math.isfinite(t.value):
                value = float(t.value)
            elif t.state == "PRUNED":
                steps = json.loads(t.intermediate or "{}")
                if not steps:
                    continue
                value = float(steps[max(steps, key=int)])
            else:
                continue
            if math.isfinite(value):
                out.append({"number": int(t.number), "value": value, "state": str(t.state)})
        return out
