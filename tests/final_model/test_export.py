"""The final model: the best pair by cross-validation, tuned and refit on every track."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import GenrebenchError
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.final_model.export import choose_best_pair, export_from_results
from benchmark.inference.saved_model import load_model

#: two families under a k-fold and the test split, no ensembles (``make_config(**FM)``)
FM = dict(
    name="fm",
    seed=2,
    families=["logreg", "dummy"],
    protocols={"artist_kfold": {"n_folds": 3}, "fault_filtered": {}},
    baseline={"feature_set": "csv_30s", "family": "dummy"},
    ensembles=False,
)


def _rows(protocol: str, family: str, accs: list[float]) -> list[dict]:
    return [
        {
            "feature_set": "csv_30s",
            "family": family,
            "protocol": protocol,
            "fold": k,
            "status": "done",
            "accuracy": a,
            "balanced_accuracy": a,
            "macro_f1": a,
            "log_loss": 1.0,
            "accuracy_vote": a,
            "n_trials": 2,
            "fit_s": 0.1,
        }
        for k, a in enumerate(accs)
    ]


def test_the_winner_is_chosen_by_cross_validation_never_by_the_test_split() -> None:
    res = pd.DataFrame(
        _rows("artist_kfold", "logreg", [0.6, 0.5])
        + _rows("artist_kfold", "knn", [0.4, 0.5])
        + _rows("fault_filtered", "knn", [0.9])  # a lucky test split must not decide
    )
    choice = choose_best_pair(res, {"feature_set": "csv_30s", "family": "logreg"})
    assert (choice.pair.family, choice.pair.protocol) == ("logreg", "artist_kfold")
    assert math.isclose(choice.accuracy, 0.55)
    only_ff = res[res["protocol"] == "fault_filtered"]
    with pytest.raises(GenrebenchError, match="never by the fault-filtered test split"):
        choose_best_pair(only_ff, {"feature_set": "csv_30s", "family": "knn"})


def test_export_refits_the_best_pair_on_every_track_and_saves_it(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config(**FM)
    result = plan_and_run(
        cfg, RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path, track=False)
    )
    folder = export_from_results(result.results_dir)
    model = load_model(folder)
    meta = json.loads((folder / "model.json").read_text())
    assert meta["pair"] == {"feature_set": "csv_30s", "family": "logreg"}
    assert meta["selected_by"] == "artist_kfold" and meta["n_tracks"] == 80
    assert set(meta["protocol_scores"]) == {"artist_kfold", "fault_filtered"}
    # the refit saw every track: it reproduces the CSV labels far above chance
    csv = pd.read_csv(fake_gtzan / "features_30_sec.csv")
    X = csv.drop(columns=["filename", "length", "label"]).to_numpy(dtype=float)
    proba = model.estimator.predict_proba(X)
    labels = np.asarray(meta["classes"])[proba.argmax(axis=1)]
    assert np.mean(labels == csv["label"].to_numpy()) > 0.8
    # refitting resumes the stored final study: same params, a new fit
    refit = export_from_results(result.results_dir, refit=True)
    again = json.loads((refit / "model.json").read_text())
    assert again["params"] == meta["params"] and again["saved_at"] >= meta["saved_at"]
    assert again["export_key"] == meta["export_key"]


def test_a_rerun_keeps_an_up_to_date_final_model_and_refits_a_stale_one(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config(**FM)
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path, track=False)
    result = plan_and_run(cfg, opts)
    folder = export_from_results(result.results_dir)
    saved = (folder / "model.joblib").stat().st_mtime_ns
    key = json.loads((folder / "model.json").read_text())["export_key"]
    # same config, data, code and results: the model is kept, byte for byte
    plan_and_run(cfg, opts)
    assert export_from_results(result.results_dir) == folder
    assert (folder / "model.joblib").stat().st_mtime_ns == saved
    # asking for another choice changes the key: refit
    other = export_from_results(result.results_dir, family="dummy")
    meta = json.loads((other / "model.json").read_text())
    assert meta["pair"]["family"] == "dummy" and meta["export_key"] != key
    # a changed results table (one fold's accuracy) changes the key too
    results = pd.read_parquet(result.results_dir / "results.parquet")
    results.loc[0, "accuracy"] = 0.0
    results.to_parquet(result.results_dir / "results.parquet")
    refit = json.loads((export_from_results(result.results_dir) / "model.json").read_text())
    assert refit["export_key"] not in (key, meta["export_key"])


def test_export_refuses_other_data(fake_gtzan: Path, tmp_path: Path, make_config) -> None:
    from fake_gtzan import make_fake_gtzan

    cfg = make_config(**{**FM, "protocols": {"artist_kfold": {"n_folds": 3}}})
    result = plan_and_run(
        cfg, RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path, track=False)
    )
    other = make_fake_gtzan(tmp_path / "other", n_per_genre=5)
    with pytest.raises(GenrebenchError, match="differ from the benchmark's"):
        export_from_results(result.results_dir, data_dir=str(other))


def test_a_final_study_on_a_set_lacking_tracks_keeps_its_inner_folds_inside(
    tmp_path: Path, make_config
) -> None:
    """Final studies share inner folds made over all tracks (so an ensemble's members are
    weighted on the same groups); a feature set lacking a track must not see it there."""
    from fake_gtzan import make_fake_gtzan

    from benchmark.data import Dataset
    from benchmark.final_model.export import _final_job
    from benchmark.results import PairKey
    from benchmark.storage import default_storage_url
    from benchmark.tuning.job import check_no_leak

    data = make_fake_gtzan(tmp_path / "g", n_per_genre=4, with_csv_3s=False)
    (data / "images_original" / "jazz" / "jazz00002.png").unlink()
    cfg = make_config(**FM)
    ds = Dataset.open(data, cfg.dataset)
    pair = PairKey("spectrogram_img", "lda", "artist_kfold")
    job, n_tracks = _final_job(cfg, ds, pair, default_storage_url(tmp_path), None, 3)
    assert n_tracks == 39
    check_no_leak(job)  # raised "inner fold 0 uses 1 track(s) outside" before
    inner = set().union(*(set(a) | set(b) for a, b in job.inner_splits))
    assert "jazz.00002" not in inner and len(inner) == 39


def test_final_studies_get_the_trials_the_folds_got(tmp_path: Path, make_config) -> None:
    """Under a budget the folds may get fewer trials than planned: the final study gets as many
    as the pair's best-tuned done fold, never more than the config plans."""
    from benchmark.final_model.export import trials_the_folds_got
    from benchmark.results import PairKey

    cfg = make_config(**FM)
    planned = cfg.trials_for("lda")
    rows = pd.DataFrame(
        {
            "feature_set": ["csv_30s"] * 3 + ["csv_30s"],
            "family": ["lda"] * 3 + ["logreg"],
            "status": ["done", "done", "skip", "done"],
            "trial_budget": [1, 2, None, 1],
        }
    )
    assert trials_the_folds_got(rows, cfg, PairKey("csv_30s", "lda", "artist_kfold")) == min(
        2, planned
    )
    rows["trial_budget"] = 10_000
    assert trials_the_folds_got(rows, cfg, PairKey("csv_30s", "lda", "x")) == planned
    missing = PairKey("csv_30s", "qda", "x")
    assert trials_the_folds_got(rows, cfg, missing) == cfg.trials_for("qda")
