"""The model a user gets: the best pair of a finished benchmark, tuned and refit on every track.

The outer folds measured how well each pair generalises; the model handed to ``genrebench
predict`` is the winner retrained on all the data. The winner is chosen by the cross-validated
accuracy of an honest k-fold protocol (artist-grouped first), never by the fault-filtered test
split: choosing on a test split would be tuning to it. Its params are tuned once more by an
Optuna study over all tracks (same budget, inner folds grouped like that protocol), stored
like every other study, so an interrupted export resumes.

A saved final model carries an *export key*: the config digest, the data checksum, the code
digest, the results table and the choice asked for. Exporting again with the same key (a rerun of
a finished benchmark) keeps the saved model instead of refitting it; any change refits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.audio.band_limit import TrainingBand, measure_training
from benchmark.config import BenchmarkConfig
from benchmark.data import Dataset
from benchmark.ensembles import (
    ENSEMBLE_FEATURE_SET,
    EnsembleMember,
    EnsembleModel,
    EnsembleSettings,
    training_pool,
)
from benchmark.errors import GenrebenchError
from benchmark.execution.plan import feature_set_of, fold_job
from benchmark.final_model.choice import Choice, choose_best_pair, computable_from_audio
from benchmark.inference.model_inputs import model_inputs
from benchmark.inference.saved_model import SavedModel, save_model
from benchmark.paths import code_digest
from benchmark.protocols import get_protocol
from benchmark.results import (
    FEATURE_CACHE_DIR,
    FINAL_MODEL_DIR,
    MODEL_FILE,
    MODEL_META_FILE,
    PREDICTIONS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    PairKey,
    summarize_pairs,
    table_digest,
)
from benchmark.storage import default_storage_url
from benchmark.tuning.fold import fit_final, refit, tune_final
from benchmark.tuning.job import FoldJob, derive_seed

__all__ = [
    "Choice",
    "choose_best_pair",
    "config_from_run",
    "export_final_model",
    "export_from_results",
    "export_key",
    "saved_export_key",
    "training_band",
]

log = logging.getLogger(__name__)


def _final_job(
    cfg: BenchmarkConfig,
    dataset: Dataset,
    pair: PairKey,
    storage_url: str,
    cache_dir: Path | None,
    n_trials: int,
    deadline: float | None = None,
) -> tuple[FoldJob, int]:
    """The final study of ``pair`` over every track: inner folds made over all the dataset's
    tracks like ``pair.protocol``'s (so every member of a final ensemble shares them).
    Returns the job and how many tracks the feature set has."""
    fam = cfg.model_family(pair.family)
    fm = feature_set_of(cfg, pair.feature_set).load(dataset, fam.input_kind, cache_dir)
    proto = get_protocol(pair.protocol, **cfg.protocols.get(pair.protocol, {}))
    every = dataset.tracks["track_id"].to_numpy(dtype=str)
    own = set(fm.tracks)
    inner = [
        (a[np.isin(a, list(own))], b[np.isin(b, list(own))])
        for a, b in proto.inner_splits(
            dataset, every, cfg.inner_folds, derive_seed(cfg.seed, pair.protocol, "final")
        )
    ]
    final_pair = PairKey(pair.feature_set, pair.family, "final")
    job = fold_job(
        cfg,
        final_pair,
        0,
        fm,
        dataset.labels_of(fm.row_track),
        tuple(dataset.classes),
        fm.tracks,
        np.array([], dtype=str),
        inner,
        storage_url,
        n_trials=n_trials,
        fail_fast=True,
        deadline=deadline,
    )
    return job, len(fm.tracks)


def trials_the_folds_got(results: pd.DataFrame, cfg: BenchmarkConfig, pair: PairKey) -> int:
    """A final study's trials: the most any done fold of the pair was tuned with (a budget may
    have given it fewer than planned, and the final model should not be tuned harder than the
    folds whose accuracy it reports), the config's when no row says."""
    planned = cfg.trials_for(pair.family)
    rows = results[
        (results["feature_set"] == pair.feature_set)
        & (results["family"] == pair.family)
        & (results["status"] == "done")
    ]
    if "trial_budget" not in rows:
        return planned
    budgets = pd.to_numeric(rows["trial_budget"], errors="coerce").dropna()
    return int(min(planned, budgets.max())) if len(budgets) else planned


def _scores(results: pd.DataFrame, cfg: BenchmarkConfig, pair: PairKey) -> dict[str, Any]:
    scores = summarize_pairs(results, cfg.baseline)
    scores = scores[
        (scores["feature_set"] == pair.feature_set)
        & (scores["family"] == pair.family)
        & (scores["status"] == "done")
    ]
    return {
        r["protocol"]: {
            "accuracy": r["accuracy"],
            "accuracy_std": r["accuracy_std"],
            "folds": r["folds"],
        }
        for _, r in scores.iterrows()
    }


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
    deadline: float | None = None,
    refit: bool = False,
) -> Path:
    """Tune and refit the chosen pair (or ensemble) on every track; save it to
    ``results_dir/final_model``. Only a model that can classify an audio file is exported:
    better candidates that cannot are passed over, and ``model.json`` says so. Final studies
    get the trials the pair's folds got (:func:`trials_the_folds_got`) and start no trial after
    ``deadline`` but their first. A model saved with the same :func:`export_key` is kept as it
    is, unless ``refit``."""
    out = results_dir / FINAL_MODEL_DIR
    key = export_key(cfg, dataset, results, family=family, feature_set=feature_set)
    if not refit and saved_export_key(out) == key:
        log.info("final model: %s is up to date (export key %s): kept, not refit", out, key)
        return out
    preds_path = results_dir / PREDICTIONS_FILE
    predictions = pd.read_parquet(preds_path) if preds_path.is_file() else None
    choice = choose_best_pair(
        results,
        cfg.baseline,
        family=family,
        feature_set=feature_set,
        predictable=True,
        feature_variants=cfg.feature_variants,
        predictions=predictions,
    )
    for why in choice.passed_over:
        log.warning("final model: passed over %s", why)
    if choice.coverage_note:
        log.warning("final model: %s", choice.coverage_note)
    pair = choice.pair
    log.info(
        "final model: %s (%s accuracy %.3f ± %.3f over %s folds)",
        pair.label,
        pair.protocol,
        choice.accuracy,
        choice.accuracy_std,
        choice.folds,
    )
    t0 = time.perf_counter()
    common = {
        "benchmark": cfg.name,
        "classes": list(dataset.classes),
        "seed": cfg.seed,
        "selected_by": pair.protocol,
        "passed_over": list(choice.passed_over),
        "config_digest": cfg.digest(),
        "data_checksum": dataset.checksum(),
        "protocol_scores": _scores(results, cfg, pair),
    }
    if choice.coverage_note:  # only when candidates covered different tracks
        common["coverage"] = {
            "tracks": choice.n_tracks,
            "of": choice.n_protocol_tracks,
            "note": choice.coverage_note,
        }
    if pair.feature_set == ENSEMBLE_FEATURE_SET:
        estimator, meta = _fit_final_ensemble(
            cfg, dataset, results, pair, storage_url, cache_dir, deadline
        )
    else:
        n_trials = trials_the_folds_got(results, cfg, pair)
        job, n_tracks = _final_job(cfg, dataset, pair, storage_url, cache_dir, n_trials, deadline)
        estimator, params, inner_accuracy = fit_final(job)
        meta = {
            "feature_set": pair.feature_set,
            "feature_params": cfg.feature_params_of(pair.feature_set),
            "input_kind": cfg.model_family(pair.family).input_kind,
            "pair": {"feature_set": pair.feature_set, "family": pair.family},
            "params": params,
            "inner_accuracy": inner_accuracy,
            "n_tracks": n_tracks,
            "study_name": job.study_name,
        }
        if cfg.feature_of(pair.feature_set) is not None:  # a variant: the set that computes it
            meta["feature_of"] = cfg.feature_of(pair.feature_set)
        augmentation = _augmentation(cfg, pair.feature_set, job)
        if augmentation is not None:
            meta["augmentation"] = augmentation
    meta = {**common, **meta, "fit_s": round(time.perf_counter() - t0, 2)}
    meta["training_audio"] = training_band(dataset, estimator, meta).to_dict()
    meta["export_key"] = key
    save_model(out, estimator, meta)
    return out


def export_key(
    cfg: BenchmarkConfig,
    dataset: Dataset,
    results: pd.DataFrame,
    *,
    family: str | None = None,
    feature_set: str | None = None,
) -> str:
    """What a final model is a function of: the config, the data, the code, the results it is
    chosen from, and the family or feature set asked for. Equal keys give the same model."""
    what = {
        "config": cfg.digest(),
        "data": dataset.checksum(),
        "code": code_digest(),
        "results": table_digest(results),
        "family": family,
        "feature_set": feature_set,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def saved_export_key(folder: Path) -> str | None:
    """The export key of the complete model saved in ``folder``, or None (none, or unreadable)."""
    try:
        meta = json.loads((folder / MODEL_META_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (folder / MODEL_FILE).is_file() or not isinstance(meta, dict):
        return None
    key = meta.get("export_key")
    return str(key) if key else None


def _augmentation(cfg: BenchmarkConfig, feature_set: str, job: FoldJob) -> dict[str, Any] | None:
    """What ``model.json`` says of the augmented copies the model was trained with (the
    settings, the benchmark's seed filled in, and how many training rows were copies), or
    None without augmentation."""
    aug = getattr(feature_set_of(cfg, feature_set), "augmentation", None)
    if aug is None:
        return None
    copies = 0 if job.row_copy is None else int(np.count_nonzero(job.row_copy))
    return {**aug.to_dict(), "training_rows": int(len(job.row_track)), "copy_rows": copies}


def training_band(dataset: Dataset, estimator: Any, meta: dict[str, Any]) -> TrainingBand:
    """The band of the audio the model was trained on, decoded as its inputs decode a file (so
    ``predict`` compares like with like); the dataset's declared sample rate, or unknown, when
    the dataset has no audio (a model on Kaggle's CSVs alone)."""
    inputs = model_inputs(SavedModel(Path(), estimator, meta))
    band = measure_training(
        dataset.tracks["audio_path"].dropna().astype(str).tolist(),
        max(i.fset.sample_rate for i in inputs),
        seconds=max(i.fset.seconds for i in inputs),
        declared_rate=dataset.manifest.sample_rate,
    )
    log.info("final model: %s", band.describe())
    return band


def _fit_final_ensemble(
    cfg: BenchmarkConfig,
    dataset: Dataset,
    results: pd.DataFrame,
    choice: PairKey,
    storage_url: str,
    cache_dir: Path | None,
    deadline: float | None = None,
) -> tuple[EnsembleModel, dict[str, Any]]:
    """The chosen ensemble method, learnt again as in every outer fold but over all tracks:
    each candidate pair (done on every fold of the selection protocol, computable from audio)
    gets its final study and inner OOF predictions; the method picks members and weights from
    those; the members it keeps are refit on every track."""
    settings = cfg.ensemble_settings() or EnsembleSettings()
    rows = results[
        (results["protocol"] == choice.protocol) & (results["feature_set"] != ENSEMBLE_FEATURE_SET)
    ]
    candidates, left_out = [], {}
    for (fs, fam), g in rows.groupby(["feature_set", "family"], sort=True):
        label = f"{fs} · {fam}"
        if set(g["status"]) != {"done"}:
            left_out[label] = "not done on every fold"
        elif not computable_from_audio(str(fs), cfg.feature_variants):
            left_out[label] = "feature set not computable from audio"
        else:
            candidates.append(PairKey(str(fs), str(fam), choice.protocol))
    if not candidates:
        raise GenrebenchError(
            f"cannot build the final {choice.family} ensemble: no pair is done on every fold "
            f"of {choice.protocol} and computable from audio"
        )
    jobs, inner = [], []
    for key in candidates:
        n_trials = trials_the_folds_got(results, cfg, key)
        job, _ = _final_job(cfg, dataset, key, storage_url, cache_dir, n_trials, deadline)
        params, _, oof = tune_final(job, with_inner=True)
        jobs.append((key, job, params))
        assert oof is not None
        inner.append(oof.assign(feature_set=key.feature_set, family=key.family))
    table = pd.concat(inner, ignore_index=True)
    pool = training_pool(choice.protocol, 0, candidates, table, settings.min_coverage)
    if isinstance(pool, str):
        raise GenrebenchError(f"cannot build the final {choice.family} ensemble: {pool}")
    left_out.update(pool.left_out)
    method = settings.method(choice.family).fit(pool.P_train, pool.y_train, pool.groups)
    weights = method.weights()
    by_key = {key: (job, params) for key, job, params in jobs}
    members, keep = [], []
    for i, (key, w) in enumerate(zip(pool.members, weights, strict=True)):
        if w <= 0 and not method.needs_every_member:
            continue  # never asked: not refit
        job, params = by_key[key]
        keep.append(i)
        members.append(
            EnsembleMember(
                feature_set=key.feature_set,
                family=key.family,
                feature_params=cfg.feature_params_of(key.feature_set),
                feature_of=cfg.feature_of(key.feature_set),
                input_kind=cfg.model_family(key.family).input_kind,
                params=params,
                weight=float(w),
                estimator=refit(job, params),
            )
        )
    model = EnsembleModel(
        method=method, members=members, member_index=keep, n_members=len(pool.members)
    )
    for label, why in sorted(left_out.items()):
        log.info("final ensemble: left out %s (%s)", label, why)
    meta = {
        "kind": "ensemble",
        "feature_set": ENSEMBLE_FEATURE_SET,
        "pair": {"feature_set": ENSEMBLE_FEATURE_SET, "family": choice.family},
        "params": {k: v for k, v in method.params.items() if k != "grid"},
        "members": [m.describe() for m in members],
        "left_out": left_out,
        "n_tracks": int(len(pool.train_tracks)),
        "inner_accuracy": float(
            np.mean(method.predict_proba(pool.P_train).argmax(axis=1) == pool.y_train)
        ),
    }
    return model, meta


def config_from_run(results_dir: Path) -> tuple[BenchmarkConfig, dict[str, Any]]:
    """The config a finished run used (from its ``run.json``), and the whole provenance."""
    import json

    from benchmark.config import config_from_dict

    path = Path(results_dir) / RUN_FILE
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
    within_budget: bool = False,
    refit: bool = False,
) -> Path:
    """Export the final model of the finished benchmark in ``results_dir``; ``within_budget``
    (the end of ``run``): its final studies stop at the end of the run's budget; ``refit``:
    refit even when the saved model is up to date."""
    results_dir = Path(results_dir)
    cfg, prov = config_from_run(results_dir)
    dataset = Dataset.open(data_dir or prov.get("data_dir"), cfg.dataset, cfg.tracks)
    if dataset.checksum() != prov.get("data_checksum"):
        raise GenrebenchError(
            f"the data in {dataset.root} differ from the benchmark's (checksum "
            f"{dataset.checksum()} vs {prov.get('data_checksum')}): point --data-dir at the "
            "folder the benchmark ran on"
        )
    results = pd.read_parquet(results_dir / RESULTS_FILE)
    url = storage_url or default_storage_url(results_dir)
    return export_final_model(
        cfg,
        dataset,
        results,
        results_dir,
        url,
        family=family,
        feature_set=feature_set,
        cache_dir=results_dir.parent / FEATURE_CACHE_DIR,
        deadline=prov.get("schedule", {}).get("ends_at") if within_budget else None,
        refit=refit,
    )
