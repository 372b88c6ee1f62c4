"""MLflow tracking on a real SQLite store: parent/child layout, idempotence, status mapping,
artifacts, summaries and clear errors for a store that cannot be opened."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient

from benchmark.errors import ConfigError
from benchmark.results import FoldOutcome, PairKey, results_frame
from benchmark.storage import default_tracking_uri
from benchmark.tracking import Tracker

PAIR = PairKey("csv_30s", "svm", "artist_kfold")
CLASSES = ("blues", "jazz", "rock")
TAGS = {"seed": "7", "config_digest": "abc123", "genrebench_version": "0.1.0"}
SPACE = {"family": "svm", "params": {"C": {"type": "float", "low": 0.001, "high": 1000.0}}}


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised MLflow database: creating the schema takes seconds, copying it does not."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    MlflowClient(default_tracking_uri(folder)).search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def uri(tmp_path: Path, template_db: Path) -> str:
    shutil.copy(template_db, tmp_path / "mlflow.db")
    return default_tracking_uri(tmp_path)


@pytest.fixture
def tracker(uri: str) -> Tracker:
    return Tracker(uri, "quick", TAGS)


def make_trials(n: int = 6) -> list[optuna.trial.FrozenTrial]:
    """Trials of a toy study: trial 3 is pruned, trial 4 fails, the rest complete."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("C", 1e-3, 1e3, log=True)
        trial.suggest_categorical("kernel", ["rbf", "linear"])
        score = 1 / (1 + abs(math.log10(x)))
        for step in range(3):
            trial.report(score * (step + 1) / 3, step)
        if trial.number == 3:
            raise optuna.TrialPruned()
        if trial.number == 4:
            trial.set_user_attr("error", "ValueError: boom")
            raise ValueError("boom")
        return score

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=n, catch=(ValueError,))
    return study.get_trials()


def make_outcome(fold: int = 0, status: str = "done", n_tracks: int = 9) -> FoldOutcome:
    rows = []
    for i in range(n_tracks):
        y_true = CLASSES[i % 3]
        y_pred = CLASSES[(i + (i == 4)) % 3]
        proba = {f"proba_{c}": 0.8 if c == y_pred else 0.1 for c in CLASSES}
        rows.append(
            {
                "track_id": f"{y_true}.{i:05d}",
                "y_true": y_true,
                "y_pred": y_pred,
                "correct": y_true == y_pred,
                **proba,
            }
        )
    predictions = pd.DataFrame(rows)
    if status != "done":
        return FoldOutcome(
            PAIR,
            fold,
            status,
            "every trial failed: boom",
            study_name=f"quick.{PAIR.slug}.fold{fold}",
        )
    acc = float(predictions["correct"].mean())
    return FoldOutcome(
        PAIR,
        fold,
        "done",
        metrics={
            "accuracy": acc,
            "balanced_accuracy": acc - 0.01,
            "macro_f1": acc - 0.02,
            "log_loss": 0.5 + fold,
            "accuracy_vote": acc,
        },
        inner_accuracy=0.7 + fold / 100,
        n_trials=4,
        n_pruned=1,
        n_train=30,
        n_test=n_tracks,
        coverage=1.0,
        tune_s=2.0,
        fit_s=0.25 * (fold + 1),
        predict_s=0.01,
        params={"C": 1.5, "kernel": "rbf"},
        study_name=f"quick.{PAIR.slug}.fold{fold}",
        predictions=predictions,
    )


def make_split(fold: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "protocol": PAIR.protocol,
            "fold": fold,
            "track_id": [f"blues.{i:05d}" for i in range(6)],
            "part": ["train"] * 4 + ["test"] * 2,
        }
    )


def log(tracker: Tracker, outcome: FoldOutcome, trials) -> None:
    tracker.log_fold(
        outcome,
        trials,
        make_split(outcome.fold),
        protocol_description="artist-grouped 5-fold",
        search_space=SPACE,
    )


def runs(tracker: Tracker, filter_string: str = ""):
    return tracker.client.search_runs([tracker.experiment_id], filter_string, max_results=1000)


def children(tracker: Tracker, parent_id: str):
    return runs(tracker, f"tags.`mlflow.parentRunId` = '{parent_id}'")


def by_trial(tracker: Tracker, parent_id: str) -> dict[int, object]:
    return {int(r.data.tags["genrebench.trial"]): r for r in children(tracker, parent_id)}


def test_default_tracking_uri(tmp_path: Path) -> None:
    assert default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_parent_run_and_nested_trial_runs(tracker: Tracker) -> None:
    assert tracker.parent_run_id(PAIR) is None
    trials = make_trials()
    log(tracker, make_outcome(), trials)

    parent_id = tracker.parent_run_id(PAIR)
    assert parent_id is not None
    by_name = runs(tracker, f"attributes.run_name = '{PAIR.label}'")
    by_tag = runs(tracker, f"tags.`genrebench.pair` = '{PAIR.slug}'")
    assert [r.info.run_id for r in by_name] == [r.info.run_id for r in by_tag] == [parent_id]
    parent = tracker.client.get_run(parent_id)
    assert parent.info.run_name == "csv_30s · svm · artist_kfold"
    for key, value in {
        **TAGS,
        "feature_set": "csv_30s",
        "family": "svm",
        "protocol": "artist_kfold",
        "mlflow.genrebench.fold_0_status": "done",
    }.items():
        assert parent.data.tags[key] == value
    # bookkeeping only under the prefix MLflow's UI hides
    assert not [k for k in parent.data.tags if "fold_0" in k and not k.startswith("mlflow.")]
    assert parent.data.params == {
        "feature_set": "csv_30s",
        "family": "svm",
        "protocol": "artist_kfold",
    }
    assert parent.info.status == "FINISHED"
    history = tracker.client.get_metric_history(parent_id, "fold_accuracy")
    assert [(m.step, m.value) for m in history] == [(0, pytest.approx(8 / 9))]
    for key in (
        "fold_balanced_accuracy",
        "fold_macro_f1",
        "fold_log_loss",
        "fold_inner_accuracy",
        "fold_fit_s",
    ):
        assert key in parent.data.metrics

    kids = by_trial(tracker, parent_id)
    assert sorted(kids) == [t.number for t in trials]
    best = kids[0]
    assert best.info.run_name == "fold 0 · trial 0"
    assert best.data.tags["genrebench.study"] == "quick.csv_30s__svm__artist_kfold.fold0"
    assert best.data.params["kernel"] == trials[0].params["kernel"]
    assert float(best.data.params["C"]) == pytest.approx(trials[0].params["C"])
    assert best.data.metrics["inner_accuracy"] == pytest.approx(trials[0].value)
    running = tracker.client.get_metric_history(best.info.run_id, "inner_running_accuracy")
    assert {m.step: m.value for m in running} == pytest.approx(trials[0].intermediate_values)


def test_trial_status_mapping(tracker: Tracker) -> None:
    trials = make_trials()
    log(tracker, make_outcome(), trials)
    kids = by_trial(tracker, tracker.parent_run_id(PAIR))
    assert kids[0].info.status == "FINISHED" and kids[0].data.tags["state"] == "COMPLETE"
    assert kids[3].info.status == "KILLED" and kids[3].data.tags["pruned"] == "true"
    assert kids[3].data.tags["state"] == "PRUNED" and "inner_accuracy" not in kids[3].data.metrics
    assert kids[4].info.status == "FAILED" and kids[4].data.tags["state"] == "FAIL"
    assert kids[4].data.tags["user_attr.error"] == "ValueError: boom"
    for number, run in kids.items():
        t = trials[number]
        assert run.info.start_time == int(t.datetime_start.timestamp() * 1000)
        assert run.info.end_time == int(t.datetime_complete.timestamp() * 1000)


def test_rerun_does_not_duplicate(uri: str) -> None:
    trials = make_trials()
    first = Tracker(uri, "quick", TAGS)
    log(first, make_outcome(), trials)
    log(first, make_outcome(), trials)
    again = Tracker(uri, "quick", {**TAGS, "git_commit": "def456"})  # a new process
    log(again, make_outcome(), trials)
    parent_id = again.parent_run_id(PAIR)
    assert parent_id == first.parent_run_id(PAIR)
    assert len(runs(again, "tags.`genrebench.kind` = 'pair'")) == 1
    assert len(children(again, parent_id)) == len(trials)
    assert len(again.client.get_metric_history(parent_id, "fold_accuracy")) == 1
    assert again.client.get_run(parent_id).data.tags["git_commit"] == "def456"

    log(again, make_outcome(fold=1), trials[:4])  # a second fold, its own trials
    assert len(children(again, parent_id)) == len(trials) + 4
    history = again.client.get_metric_history(parent_id, "fold_accuracy")
    assert sorted(m.step for m in history) == [0, 1]


def test_partially_logged_fold_completes_without_duplicates(tracker: Tracker) -> None:
    trials = make_trials()
    log(tracker, make_outcome(), trials[:3])
    parent_id = tracker.parent_run_id(PAIR)
    # an interrupted run: the fold marker is missing, one child was left RUNNING
    tracker.client.delete_tag(parent_id, "mlflow.genrebench.fold_0_logged")
    stuck = by_trial(tracker, parent_id)[2]
    tracker.client.update_run(stuck.info.run_id, status="RUNNING")
    resumed = Tracker(tracker.tracking_uri, tracker.experiment_name, TAGS)  # the next process
    log(resumed, make_outcome(), trials)
    kids = by_trial(tracker, parent_id)
    assert len(children(tracker, parent_id)) == len(kids) == len(trials)
    assert kids[2].info.status == "FINISHED"


def test_fold_artifacts(tracker: Tracker) -> None:
    outcome = make_outcome()
    log(tracker, outcome, make_trials())
    parent_id = tracker.parent_run_id(PAIR)
    client = tracker.client
    assert {f.path for f in client.list_artifacts(parent_id)} == {"folds", "search_space.json"}
    names = {Path(f.path).name for f in client.list_artifacts(parent_id, "folds/fold_0")}
    assert names == {
        "best_params.json",
        "outcome.json",
        "predictions.csv",
        "split.csv",
        "confusion_matrix.csv",
        "confusion_matrix.png",
    }
    local = Path(client.download_artifacts(parent_id, "folds/fold_0"))
    assert json.loads((local / "best_params.json").read_text()) == outcome.params
    preds = pd.read_csv(local / "predictions.csv")
    pd.testing.assert_frame_equal(preds, outcome.predictions, check_dtype=False)
    split = pd.read_csv(local / "split.csv")
    assert list(split.columns) == ["protocol", "fold", "track_id", "part"] and len(split) == 6
    cm = pd.read_csv(local / "confusion_matrix.csv", index_col=0)
    assert list(cm.index) == list(cm.columns) == list(CLASSES)
    assert cm.to_numpy().sum() == len(preds) and cm.to_numpy().trace() == preds["correct"].sum()
    assert (local / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    space = json.loads(Path(client.download_artifacts(parent_id, "search_space.json")).read_text())
    assert space == SPACE
    # artifacts of an SQLite store live beside the database, not in the working directory
    db = Path(tracker.tracking_uri.removeprefix("sqlite:///"))
    assert (db.parent / "mlartifacts" / "quick").is_dir()


def test_failed_fold_logs_status_not_metrics(tracker: Tracker) -> None:
    log(tracker, make_outcome(fold=0), make_trials())
    log(tracker, make_outcome(fold=1, status="error"), [])
    parent = tracker.client.get_run(tracker.parent_run_id(PAIR))
    assert parent.data.tags["mlflow.genrebench.fold_1_status"] == "error"
    assert parent.data.tags["fold_1_message"] == "every trial failed: boom"
    history = tracker.client.get_metric_history(parent.info.run_id, "fold_accuracy")
    assert [m.step for m in history] == [0]
    assert parent.info.status == "FAILED"
    names = {f.path for f in tracker.client.list_artifacts(parent.info.run_id, "folds")}
    assert names == {"folds/fold_0"}


def summary_rows(statuses: tuple[str, ...]) -> pd.DataFrame:
    context = {"benchmark": "quick", "dataset": "gtzan", "seed": 7}
    return results_frame(make_outcome(k, s).row(**context) for k, s in enumerate(statuses))


def test_pair_summary_metrics_are_means_of_done_folds(tracker: Tracker) -> None:
    rows = summary_rows(("done", "done", "error"))
    tracker.log_pair_summary(PAIR, rows)
    metrics = tracker.client.get_run(tracker.parent_run_id(PAIR)).data.metrics
    done = rows[rows["status"] == "done"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "fit_s"):
        assert metrics[f"{key}_mean"] == pytest.approx(done[key].mean())
    assert "accuracy" not in metrics  # no bare name to mistake for a fold's or a test's score
    assert metrics["accuracy_std"] == pytest.approx(done["accuracy"].std(ddof=1))
    assert metrics["n_folds_done"] == 2 and metrics["n_trials"] == done["n_trials"].sum()

    rows = summary_rows(("done", "done", "done"))  # a rerun finished the third fold
    tracker.log_pair_summary(PAIR, rows)
    metrics = tracker.client.get_run(tracker.parent_run_id(PAIR)).data.metrics
    assert metrics["n_folds_done"] == 3
    assert metrics["log_loss_mean"] == pytest.approx(rows["log_loss"].mean())
    assert metrics["fit_s_mean"] == pytest.approx(rows["fit_s"].mean())
    run_id = tracker.parent_run_id(PAIR)
    assert len(tracker.client.get_metric_history(run_id, "accuracy_mean")) == 2

    # the same summary again (a rerun, here and in a new process) writes nothing
    tracker.log_pair_summary(PAIR, rows)
    fresh = Tracker(tracker.tracking_uri, tracker.experiment_name, TAGS)
    fresh.log_pair_summary(PAIR, rows)
    assert len(fresh.client.get_metric_history(run_id, "accuracy_mean")) == 2


def test_experiment_is_reused(uri: str) -> None:
    a = Tracker(uri, "quick", TAGS)
    b = Tracker(uri, "quick", TAGS)
    c = Tracker(uri, "full", TAGS)
    assert a.experiment_id == b.experiment_id != c.experiment_id


@pytest.mark.parametrize(
    "bad_uri",
    ["postgresql://u:secret@127.0.0.1:1/db", "http://u:secret@127.0.0.1:1", "nosuchscheme://x"],
)
def test_unreachable_store_is_a_config_error(bad_uri: str) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        Tracker(bad_uri, "quick", TAGS)
    message = str(info.value)
    assert "secret" not in message and "\n" not in message
    assert message.startswith("cannot open the MLflow tracking store")
    assert time.perf_counter() - t0 < 15


def test_unwritable_sqlite_path_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot open the MLflow tracking store"):
        Tracker(f"sqlite:///{blocker}/mlflow.db", "quick", TAGS)


ENSEMBLE = PairKey("ensemble", "greedy", "artist_kfold")


def ensemble_tables(statuses: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Result rows and predictions of an ensemble (no study behind its folds), as the ensemble
    stage writes them."""
    from benchmark.results import predictions_frame

    outcomes = []
    for k, status in enumerate(statuses):
        o = make_outcome(k, status)
        o.pair, o.study_name = ENSEMBLE, ""
        o.members = {"csv_30s · svm": 0.5, "csv_30s · lda": 0.5} if status == "done" else {}
        outcomes.append(o)
    context = {"benchmark": "quick", "dataset": "gtzan", "seed": 7}
    return results_frame(o.row(**context) for o in outcomes), predictions_frame(outcomes)


def test_ensemble_summary_logs_its_folds_like_a_pair_and_ends_the_run(tracker: Tracker) -> None:
    rows, preds = ensemble_tables(("done", "done"))
    splits = pd.concat([make_split(0), make_split(1)], ignore_index=True)
    tracker.log_pair_summary(
        ENSEMBLE, rows, predictions=preds, splits=splits, protocol_description="5-fold"
    )
    client = tracker.client
    run = client.get_run(tracker.parent_run_id(ENSEMBLE))
    assert run.info.status == "FINISHED" and run.info.end_time
    history = client.get_metric_history(run.info.run_id, "fold_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(0, 8 / 9), (1, 8 / 9)]
    assert run.data.metrics["accuracy_mean"] == pytest.approx(8 / 9)
    local = Path(client.download_artifacts(run.info.run_id, "folds/fold_1"))
    cm = pd.read_csv(local / "confusion_matrix.csv", index_col=0)
    assert cm.to_numpy().sum() == 9 and list(cm.index) == list(CLASSES)
    assert len(pd.read_csv(local / "split.csv")) == 6
    assert (local / "confusion_matrix.png").is_file()
    assert "search_space.json" not in {f.path for f in client.list_artifacts(run.info.run_id)}

    # the same tables again (a rerun): nothing logged twice
    again = Tracker(tracker.tracking_uri, tracker.experiment_name, TAGS)
    again.log_pair_summary(ENSEMBLE, rows, predictions=preds, splits=splits)
    assert len(client.get_metric_history(run.info.run_id, "fold_accuracy")) == 2


def test_summary_ends_a_run_that_a_kill_left_running(tracker: Tracker) -> None:
    log(tracker, make_outcome(0), make_trials(2))
    run_id = tracker.parent_run_id(PAIR)
    tracker.client.update_run(run_id, status="RUNNING")  # killed between two calls
    fresh = Tracker(tracker.tracking_uri, tracker.experiment_name, TAGS)
    fresh.log_pair_summary(PAIR, summary_rows(("done",)))
    assert fresh.client.get_run(run_id).info.status == "FINISHED"


def test_interrupt_leaves_runs_killed_not_running(tracker: Tracker) -> None:
    log(tracker, make_outcome(0), make_trials(2))
    other = PairKey("csv_30s", "lda", "artist_kfold")
    tracker._parent(other)  # a run opened, its fold not logged yet
    tracker.interrupted([PAIR])  # PAIR's fold 1 was still to do
    client = tracker.client
    assert client.get_run(tracker.parent_run_id(other)).info.status == "KILLED"
    assert client.get_run(tracker.parent_run_id(PAIR)).info.status == "KILLED"
    log(tracker, make_outcome(1), make_trials(2))  # the resumed run finishes the pair
    assert client.get_run(tracker.parent_run_id(PAIR)).info.status == "FINISHED"


def test_dataset_digest_is_the_data_checksum(uri: str) -> None:
    tracker = Tracker(uri, "quick", {**TAGS, "data_checksum": "0123456789abcdef"})
    log(tracker, make_outcome(), make_trials(2))
    run = tracker.client.get_run(tracker.parent_run_id(PAIR))
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("csv_30s", "0123456789abcdef")


def test_a_store_of_an_older_genrebench_is_resumed_without_relogging(tracker: Tracker) -> None:
    log(tracker, make_outcome(), make_trials(2))
    parent_id = tracker.parent_run_id(PAIR)
    marker = tracker.client.get_run(parent_id).data.tags["mlflow.genrebench.fold_0_logged"]
    tracker.client.delete_tag(parent_id, "mlflow.genrebench.fold_0_logged")
    tracker.client.set_tag(parent_id, "genrebench.fold_0_logged", marker)  # the old key
    fresh = Tracker(tracker.tracking_uri, tracker.experiment_name, TAGS)
    log(fresh, make_outcome(), make_trials(2))
    assert len(fresh.client.get_metric_history(parent_id, "fold_accuracy")) == 1


@pytest.mark.parametrize(
    ("exc", "status"), [(None, "FINISHED"), (KeyboardInterrupt, "KILLED"), (ValueError, "FAILED")]
)
def test_started_run_ends_with_the_status_it_earned(
    tracker: Tracker, monkeypatch: pytest.MonkeyPatch, exc, status: str
) -> None:
    import mlflow

    from benchmark.tracking import started_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.tracking_uri)  # undone after the test
    mlflow.set_tracking_uri(tracker.tracking_uri)
    with contextlib.suppress(KeyboardInterrupt, ValueError):
        with started_run(experiment_id=tracker.experiment_id, run_name="final model") as run:
            if exc is not None:
                raise exc
    assert tracker.client.get_run(run.info.run_id).info.status == status
