"""``genrebench run`` end to end on a generated GTZAN folder: files, resume, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from fake_gtzan import make_fake_gtzan
from helpers import JOURNAL, run_local

from benchmark.errors import ConfigError, GenrebenchError
from benchmark.execution.local import benchmark_lock, plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.results import RESULT_COLUMNS

#: three feature sets (one missing on some folders) under a k-fold and a test-split protocol
CONFIG = dict(
    seed=3,
    feature_sets=["csv_30s", "csv_3s", "spectrogram_img"],
    protocols={"artist_kfold": {"n_folds": 3}, "fault_filtered": {}},
)


@pytest.fixture(scope="module")
def first_run(fake_gtzan: Path, tmp_path_factory: pytest.TempPathFactory, make_config):
    tmp = tmp_path_factory.mktemp("run")
    cfg = make_config(**CONFIG)
    return cfg, tmp, run_local(cfg, fake_gtzan, tmp / "results")


def test_run_writes_every_pair_fold_and_the_documented_files(first_run) -> None:
    cfg, _, result = first_run
    res = result.results
    assert list(res.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert set(res["status"]) == {"done"}, res[res["status"] != "done"][["family", "message"]]
    pairs = res[res["feature_set"] != "ensemble"]
    # 3 feature sets x 2 families x (3 artist folds + 1 fault-filtered fold)
    assert len(pairs) == 3 * 2 * 4
    # the ensemble stage: 3 methods per protocol fold
    assert sorted(set(res.loc[res["feature_set"] == "ensemble", "family"])) == [
        "greedy",
        "stacking",
        "top_k",
    ]
    assert len(res) - len(pairs) == 3 * 4
    for name in (
        "results.parquet",
        "predictions.parquet",
        "inner_predictions.parquet",
        "trials.parquet",
        "splits.parquet",
        "run.json",
    ):
        assert (result.results_dir / name).is_file()
    on_disk = pd.read_parquet(result.results_dir / "results.parquet")
    assert len(on_disk) == len(res)
    run = json.loads((result.results_dir / "run.json").read_text())
    assert run["seed"] == 3 and run["config_digest"] == cfg.digest()
    assert run["data_checksum"] and run["versions"]["optuna"]
    assert (pairs["n_trials"] + pairs["n_pruned"]).eq(2).all()


def test_every_track_is_predicted_once_per_kfold_protocol(first_run, fake_gtzan) -> None:
    _, _, result = first_run
    preds = result.predictions
    kfold = preds[
        (preds["protocol"] == "artist_kfold")
        & (preds["feature_set"] == "csv_30s")
        & (preds["family"] == "logreg")
    ]
    n_tracks = 80  # the fake folder: 10 genres x 8
    assert kfold["track_id"].is_unique and len(kfold) == n_tracks
    # segments are scored per track: csv_3s has 10 rows per track but one prediction each
    seg = preds[
        (preds["protocol"] == "artist_kfold")
        & (preds["feature_set"] == "csv_3s")
        & (preds["family"] == "logreg")
    ]
    assert seg["track_id"].is_unique and len(seg) == n_tracks
    proba = seg.filter(like="proba_").to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)


def test_splits_keep_artists_apart_and_match_the_predictions(first_run, fake_gtzan) -> None:
    _, _, result = first_run
    splits = pd.read_parquet(result.results_dir / "splits.parquet")
    index = (fake_gtzan / "metadata" / "GTZANindex.txt").read_text(encoding="latin-1")
    artist = {
        line.split(":::")[0].strip().removesuffix(".wav"): line.split(":::")[1].strip()
        for line in index.splitlines()
        if ":::" in line
    }
    for (protocol, fold), g in splits.groupby(["protocol", "fold"]):
        train = set(g.loc[g["part"] == "train", "track_id"])
        test = set(g.loc[g["part"] == "test", "track_id"])
        assert not train & test
        assert not {artist[t] for t in train} & {artist[t] for t in test}, (protocol, fold)
        scored = result.predictions[
            (result.predictions["protocol"] == protocol) & (result.predictions["fold"] == fold)
        ]
        assert set(scored["track_id"]) <= test


def test_learnable_fake_data_beats_chance(first_run) -> None:
    res = first_run[2].results
    assert res.loc[res["feature_set"] == "csv_30s", "accuracy"].mean() > 0.5  # chance 0.1


def test_rerun_runs_no_new_trial_and_gives_the_same_rows(first_run, fake_gtzan) -> None:
    cfg, tmp, result = first_run
    db = f"sqlite:///{result.results_dir / 'optuna.db'}"
    before = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(db)}
    again = run_local(cfg, fake_gtzan, tmp / "results")
    after = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(db)}
    assert after == before
    cols = ["feature_set", "family", "protocol", "fold", "accuracy", "params"]
    pd.testing.assert_frame_equal(again.results[cols], result.results[cols])


def test_same_config_and_seed_reproduce_the_scores_in_a_fresh_folder(
    first_run, fake_gtzan, tmp_path
) -> None:
    cfg, _, result = first_run
    cfg1 = cfg.with_overrides(feature_sets=["csv_30s"])
    fresh = run_local(cfg1, fake_gtzan, tmp_path / "fresh")
    mine = result.results[result.results["feature_set"] == "csv_30s"].reset_index(drop=True)
    cols = ["family", "protocol", "fold", "accuracy", "log_loss", "params"]
    fresh_pairs = fresh.results[fresh.results["feature_set"] == "csv_30s"]
    pd.testing.assert_frame_equal(fresh_pairs.reset_index(drop=True)[cols], mine[cols])


def test_missing_inputs_become_skip_rows_and_coverage_is_reported(tmp_path, make_config) -> None:
    data = make_fake_gtzan(
        tmp_path / "g", n_per_genre=6, with_csv_3s=False, with_fault_filtered=False
    )
    (data / "images_original" / "jazz" / "jazz00002.png").unlink()
    cfg = make_config(**CONFIG)
    res = run_local(cfg, data, tmp_path / "results").results
    skipped = res[res["status"] == "skip"]
    assert set(skipped["feature_set"]) >= {"csv_3s"}
    assert (
        "features_3_sec.csv" in skipped.loc[skipped["feature_set"] == "csv_3s", "message"].iloc[0]
    )
    assert set(skipped.loc[skipped["feature_set"] == "csv_30s", "protocol"]) == {"fault_filtered"}
    img = res[(res["feature_set"] == "spectrogram_img") & (res["status"] == "done")]
    assert len(img)
    for _, fam in img.groupby("family"):  # per family: one fold lacks jazz.00002
        assert (fam["coverage"] < 1).sum() == 1
        assert fam["n_test"].sum() == 59


def test_a_second_run_on_the_same_folder_is_refused_while_one_holds_it(tmp_path) -> None:
    with benchmark_lock(tmp_path):
        with pytest.raises(GenrebenchError, match="another genrebench run"):
            with benchmark_lock(tmp_path):
                pass
    with benchmark_lock(tmp_path):  # released after the first one ends
        pass


def test_run_logs_parent_runs_per_pair_with_nested_trials(fake_gtzan, tmp_path, make_config):
    from mlflow import MlflowClient

    cfg = make_config(**CONFIG).with_overrides(
        feature_sets=["csv_30s"], protocols=["fault_filtered"]
    )
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path / "r")
    result = plan_and_run(cfg, opts)
    client = MlflowClient(f"sqlite:///{result.results_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("t")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    # one parent run per pair, and per ensemble candidate over them
    assert set(parents) == {
        "csv_30s · logreg · fault_filtered",
        "csv_30s · lda · fault_filtered",
        *(f"ensemble · {m} · fault_filtered" for m in ("greedy", "stacking", "top_k")),
    }
    logreg = parents["csv_30s · logreg · fault_filtered"]
    # a model-training experiment (MLflow's UI opens on the runs), each pair's data named
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    full = client.get_run(logreg.info.run_id)
    assert [d.dataset.name for d in full.inputs.dataset_inputs] == ["csv_30s"]
    greedy = parents["ensemble · greedy · fault_filtered"]
    assert json.loads(greedy.data.tags["members"])[0]  # fold 0's members and weights
    row = result.results[result.results["family"] == "logreg"].iloc[0]
    assert logreg.data.metrics["accuracy_mean"] == pytest.approx(row["accuracy"])
    assert (
        logreg.data.tags["data_checksum"]
        == json.loads((result.results_dir / "run.json").read_text())["data_checksum"]
    )
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == logreg.info.run_id]
    assert len(children) == 2  # n_trials


def test_a_remote_cluster_with_a_local_sqlite_storage_is_refused_first(
    fake_gtzan, tmp_path, make_config
) -> None:
    """Its workers could not open the file: one line, before any work or file."""
    cfg = make_config(**JOURNAL)
    opts = RunOptions(
        data_dir=str(fake_gtzan),
        results_root=tmp_path / "r",
        track=False,
        scheduler="tcp://127.0.0.1:9",
    )
    with pytest.raises(ConfigError, match="cannot reach a local SQLite storage"):
        plan_and_run(cfg, opts)
    assert not (tmp_path / "r").exists()
