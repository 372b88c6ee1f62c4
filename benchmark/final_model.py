"""The model a user gets: the best pair of a finished benchmark, tuned and refit on every track.

The outer folds measured how well each pair generalises; the model handed to ``genrebench
predict`` is the winner retrained on all the data. The winner is chosen by the cross-validated
accuracy of an honest k-fold protocol (artist-grouped first), never by the fault-filtered test
split: choosing on a test split would be tuning to it. Its params are tuned once more by an
Optuna study over all tracks (same budget, inner folds grouped like that protocol), stored
like every other study, so an interrupted export resumes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import BenchmarkConfig
from benchmark.data import Dataset
from benchmark.errors import GenrebenchError
from benchmark.models import get_family
from benchmark.protocol import get_protocol
from benchmark.results import PairKey, summarize_pairs
from benchmark.runner import feature_set_of
from benchmark.search_space import load_search_space
from benchmark.tuning import FoldJob, derive_seed, fit_final, study_name

__all__ = [
    "SELECTION_PROTOCOLS",
    "choose_best_pair",
    "config_from_run",
    "export_final_model",
    "export_from_results",
]

log = logging.getLogger(__name__)

#: protocols a winner may be chosen by, most honest first (fault_filtered is a test split)
SELECTION_PROTOCOLS = ("artist_kfold", "stratified_kfold")


@dataclass(frozen=True)
class Choice:
    pair: PairKey
    accuracy: float
    accuracy_std: float
    folds: str


def choose_best_pair(
    results: pd.DataFrame,
    baseline: dict[str, str],
    *,
    family: str | None = None,
    feature_set: str | None = None,
) -> Choice:
    """The pair with the highest mean accuracy under the first available selection protocol,
    among pairs done on every fold (optionally restricted to one family or feature set)."""
    summary = summarize_pairs(results, baseline)
    if summary.empty:
        raise GenrebenchError("the results hold no pair to choose from")
    for protocol in SELECTION_PROTOCOLS:
        rows = summary[(summary["protocol"] == protocol) & (summary["status"] == "done")]
        if family:
            rows = rows[rows["family"] == family]
        if feature_set:
            rows = rows[rows["feature_set"] == feature_set]
        if len(rows):
            best = rows.sort_values("accuracy", ascending=False, kind="stable").iloc[0]
            return Choice(
                PairKey(best["feature_set"], best["family"], protocol),
                float(best["accuracy"]),
                float(best["accuracy_std"]),
                str(best["folds"]),
            )
    raise GenrebenchError(
        "no pair is done under a k-fold protocol "
        f"({' or '.join(SELECTION_PROTOCOLS)}); the final model is chosen by cross-validation, "
        "never by the fault-filtered test split: run a config with artist_kfold"
    )


def export_final_model(
    cfg: BenchmarkConfig,
    dataset: Dataset,
    results: pd.DataFrame,
    results_dir: Path,
    storage_url: str,
    *,
    family: str | None = None,
    feature_set: str | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Tune and refit the chosen pair on every track; save it to ``results_dir/final_model``."""
    from benchmark.predict import save_model

    choice = choose_best_pair(results, cfg.baseline, family=family, feature_set=feature_set)
    pair = choice.pair
    fam = get_family(pair.family)
    fset = feature_set_of(cfg, pair.feature_set)
    fm = fset.load(dataset, fam.input_kind, cache_dir)
    tracks = fm.tracks
    proto = get_protocol(pair.protocol, **cfg.protocols.get(pair.protocol, {}))
    inner = proto.inner_splits(
        dataset, tracks, cfg.inner_folds, derive_seed(cfg.seed, pair.protocol, "final")
    )
    final_pair = PairKey(pair.feature_set, pair.family, "final")
    job = FoldJob(
        benchmark=cfg.name,
        pair=final_pair,
        fold=0,
        X=fm.X,
        row_track=fm.row_track,
        y=dataset.labels_of(fm.row_track),
        classes=tuple(dataset.classes),
        train_tracks=tracks,
        test_tracks=np.array([], dtype=str),
        inner_splits=inner,
        space=load_search_space(pair.family).to_dict(),
        storage_url=storage_url,
        study_name=study_name(cfg.name, final_pair, 0, cfg.digest()),
        n_trials=cfg.n_trials,
        timeout_s=cfg.timeout_s,
        seed=cfg.seed,
        fail_fast=True,
    )
    log.info(
        "final model: %s (%s accuracy %.3f ± %.3f over %s folds), refit on %d tracks",
        pair.label,
        pair.protocol,
        choice.accuracy,
        choice.accuracy_std,
        choice.folds,
        len(tracks),
    )
    t0 = time.perf_counter()
    model, params, inner_accuracy = fit_final(job)
    scores = summarize_pairs(results, cfg.baseline)
    scores = scores[
        (scores["feature_set"] == pair.feature_set)
        & (scores["family"] == pair.family)
        & (scores["status"] == "done")
    ]
    meta: dict[str, Any] = {
        "benchmark": cfg.name,
        "feature_set": pair.feature_set,
        "feature_params": cfg.feature_params.get(pair.feature_set, {}),
        "view": fam.input_kind,
        "classes": list(dataset.classes),
        "pair": {"feature_set": pair.feature_set, "family": pair.family},
        "params": params,
        "seed": cfg.seed,
        "selected_by": pair.protocol,
        "inner_accuracy": inner_accuracy,
        "n_tracks": int(len(tracks)),
        "config_digest": cfg.digest(),
        "data_checksum": dataset.checksum(),
        "study_name": job.study_name,
        "fit_s": round(time.perf_counter() - t0, 2),
        "protocol_scores": {
            r["protocol"]: {
                "accuracy": r["accuracy"],
                "accuracy_std": r["accuracy_std"],
                "folds": r["folds"],
            }
            for _, r in scores.iterrows()
        },
    }
    out = results_dir / "final_model"
    save_model(out, model, meta)
    return out


def config_from_run(results_dir: Path) -> tuple[BenchmarkConfig, dict[str, Any]]:
    """The config a finished run used (from its ``run.json``), and the whole provenance."""
    import json

    from benchmark.config import config_from_dict

    path = Path(results_dir) / "run.json"
    if not path.is_file():
        raise GenrebenchError(
            f"{results_dir} holds no run.json: run the benchmark first (genrebench run)"
        )
    prov = json.loads(path.read_text())
    return config_from_dict(prov["config"], source=str(path)), prov


def export_from_results(
    results_dir: Path,
    *,
    data_dir: str | None = None,
    storage_url: str | None = None,
    family: str | None = None,
    feature_set: str | None = None,
) -> Path:
    """Export the final model of the finished benchmark in ``results_dir``."""
    results_dir = Path(results_dir)
    cfg, prov = config_from_run(results_dir)
    dataset = Dataset.open(data_dir or prov.get("data_dir"), cfg.dataset)
    if dataset.checksum() != prov.get("data_checksum"):
        raise GenrebenchError(
            f"the data in {dataset.root} differ from the benchmark's (checksum "
            f"{dataset.checksum()} vs {prov.get('data_checksum')}): point --data-dir at the "
            "folder the benchmark ran on"
        )
    results = pd.read_parquet(results_dir / "results.parquet")
    url = storage_url or f"sqlite:///{(results_dir / 'optuna.db').resolve()}"
    return export_final_model(
        cfg,
        dataset,
        results,
        results_dir,
        url,
        family=family,
        feature_set=feature_set,
        cache_dir=results_dir.parent / "cache",
    )
