"""``genrebench evaluate`` on generated labelled songs: a folder with an unmapped label, a mapping
and a broken file, a CSV input, the metrics against scikit-learn's, the HTML page and the MLflow
run (metrics, dataset input, the link to the registered model version) in a tmp SQLite store."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("librosa")
from click.testing import CliRunner  # noqa: E402
from helpers import UNIT_GENRES, save_unit_model, write_genre_clip  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from benchmark.cli import main  # noqa: E402
from benchmark.data import load_manifest  # noqa: E402
from benchmark.inference.saved_model import load_model, save_model  # noqa: E402
from benchmark.inference.song_evaluation import (  # noqa: E402
    LabelledFile,
    SongEvaluationError,
    compute_metrics,
    evaluate_songs,
    parse_mapping,
    read_labelled,
)
from benchmark.stats.bootstrap import bootstrap_ci  # noqa: E402

GENRES = UNIT_GENRES


@pytest.fixture(autouse=True)
def _no_ambient_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A logistic regression on librosa_30s features (6-s clips) of fake tones of 4 genres,
    saved as ``results/unit/final_model``, and a labelled folder of songs."""
    tmp = tmp_path_factory.mktemp("evaluate")
    unit = save_unit_model(tmp, GENRES)
    model_dir = unit.dir
    songs = tmp / "songs"
    write_genre_clip(songs / "Jazz" / "a.wav", "jazz", 11)
    write_genre_clip(songs / "Jazz" / "live" / "b.flac", "jazz", 12)  # recursive below the label
    write_genre_clip(songs / "rock" / "c.wav", "rock", 13)
    write_genre_clip(songs / "rock" / "d.flac", "rock", 14)
    # mapped to hiphop: a class never learnt
    write_genre_clip(songs / "hip-hop" / "e.wav", "blues", 15)
    write_genre_clip(songs / "polka" / "f.wav", "country", 16)  # no such class: skipped
    (songs / "rock" / "broken.mp3").write_text("liner notes, not audio\n" * 20)
    (songs / "rock" / "cover.jpg").write_bytes(b"\xff\xd8 not music")  # not audio: no row
    return {"dir": model_dir, "songs": songs, "tmp": tmp}


def _run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["evaluate", *args])
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.stdout, res.stderr


# --- the labelled input and the mapping ----------------------------------------------------------
def test_read_labelled_folder_and_csv(trained: dict, tmp_path: Path) -> None:
    files = read_labelled(trained["songs"])
    got = sorted((Path(f.path).name, f.label) for f in files)
    assert got == [
        ("a.wav", "Jazz"),
        ("b.flac", "Jazz"),
        ("broken.mp3", "rock"),
        ("c.wav", "rock"),
        ("d.flac", "rock"),
        ("e.wav", "hip-hop"),
        ("f.wav", "polka"),
    ]
    table = tmp_path / "sub" / "labels.csv"
    table.parent.mkdir()
    table.write_text(f"path,label\n../x.wav,jazz\n{trained['songs'] / 'rock' / 'c.wav'},rock\n")
    rows = read_labelled(table)
    assert rows == [
        LabelledFile(str(tmp_path / "sub" / ".." / "x.wav"), "jazz"),
        LabelledFile(str(trained["songs"] / "rock" / "c.wav"), "rock"),
    ]
    table.write_text("file,genre\nx.wav,jazz\n")
    with pytest.raises(SongEvaluationError, match="path and label"):
        read_labelled(table)
    with pytest.raises(SongEvaluationError, match="no such folder"):
        read_labelled(tmp_path / "nothing")
    (tmp_path / "flat").mkdir()
    write_genre_clip(tmp_path / "flat" / "song.wav", "jazz", 1)
    with pytest.raises(SongEvaluationError, match="<label>/<file>"):
        read_labelled(tmp_path / "flat")


def test_mapping_is_checked(trained: dict) -> None:
    assert parse_mapping(["Hip-Hop=hiphop", " rnb = pop "]) == {"hip-hop": "hiphop", "rnb": "pop"}
    for bad in ("hiphop", "=pop", "x="):
        with pytest.raises(SongEvaluationError, match="LABEL=CLASS"):
            parse_mapping([bad])
    model = load_model(trained["dir"])
    files = [LabelledFile("x.wav", "hip-hop")]
    with pytest.raises(SongEvaluationError, match="'hip_hop' is not a class of the model"):
        evaluate_songs(model, files, mapping=parse_mapping(["hip-hop=hip_hop"]))
    with pytest.raises(SongEvaluationError, match="no file has a label the model knows.*--map"):
        evaluate_songs(model, [LabelledFile("x.wav", "polka"), LabelledFile("y.wav", "hip-hop")])
    code, _, err = _run(str(trained["songs"] / "polka"), "--model", str(trained["dir"]))
    assert code == 2  # a folder of polka: nothing to score is one clear line
    code, _, err = _run(str(trained["songs"]), "--model", str(trained["dir"]), "--map", "x")
    assert code == 2 and "error: --map 'x'" in err


# --- the metrics -------------------------------------------------------------------------------
def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    classes = ["blues", "jazz", "metal", "pop", "rock"]
    truth = rng.choice(["blues", "jazz", "rock"], 80)
    pred = np.where(rng.random(80) < 0.6, truth, rng.choice(classes, 80))
    m = compute_metrics(list(truth), list(pred), classes, n_boot=1000, seed=5)
    labels = ["blues", "jazz", "rock"]
    assert m.labels == labels and m.n == 80
    assert set(m.predicted) == set(labels) | set(pred) and m.predicted[:3] == labels
    assert m.accuracy.value == pytest.approx(skm.accuracy_score(truth, pred))
    with warnings.catch_warnings():  # sklearn warns of predicted classes absent from the truth
        warnings.simplefilter("ignore")
        balanced = skm.balanced_accuracy_score(truth, pred)
    assert m.balanced_accuracy.value == pytest.approx(balanced)
    assert m.macro_f1.value == pytest.approx(
        skm.f1_score(truth, pred, labels=labels, average="macro")
    )
    recall = skm.recall_score(truth, pred, labels=labels, average=None)
    assert [m.recall[c].value for c in labels] == pytest.approx(list(recall))
    cm = skm.confusion_matrix(truth, pred, labels=m.predicted)[: len(labels)]
    assert m.confusion == cm.tolist()
    assert m.support == {c: int((truth == c).sum()) for c in labels}
    # the intervals: seeded, bracketing the value, the accuracy's that of bootstrap_ci
    assert (m.accuracy.ci_low, m.accuracy.ci_high) == bootstrap_ci(truth == pred, 1000, seed=5)
    for metric in (m.accuracy, m.balanced_accuracy, m.macro_f1, *m.recall.values()):
        assert metric.ci_low <= metric.value <= metric.ci_high
        assert 0 < metric.ci_high - metric.ci_low < 0.5
    again = compute_metrics(list(truth), list(pred), classes, n_boot=1000, seed=5)
    assert again.to_dict() == m.to_dict()
    other = compute_metrics(list(truth), list(pred), classes, n_boot=1000, seed=6)
    assert other.macro_f1.ci_low != m.macro_f1.ci_low
    # a perfect score has a degenerate interval, not NaN
    perfect = compute_metrics(["a", "b", "a"], ["a", "b", "a"], ["a", "b"], n_boot=200)
    assert perfect.macro_f1.to_dict() == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}


# --- the command: a folder, a CSV, the page ------------------------------------------------------
def test_cli_folder_with_a_skipped_label_a_mapping_and_a_broken_file(
    trained: dict, tmp_path: Path
) -> None:
    report = tmp_path / "out" / "eval.json"
    code, stdout, err = _run(
        str(trained["songs"]),
        "--model",
        str(trained["dir"]),
        "--map",
        "hip-hop=hiphop",
        "--output",
        str(report),
        "--n-boot",
        "500",
    )
    assert code == 2, err  # a file failed: as predict
    assert "skipped: label 'polka' is not a class of the model (1 file(s)" in err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "broken.mp3" in errors[0], err
    assert "7 file(s): 5 scored, 1 failed, 1 skipped" in " ".join(err.split())
    assert "accuracy" in stdout and "recall · jazz" in stdout and "confusion matrix" in stdout
    doc = json.loads(report.read_text())
    assert doc["counts"] == {"files": 7, "scored": 5, "error": 1, "skipped": 1}
    assert doc["skipped_labels"] == {"polka": 1}
    assert doc["input"]["mapping"] == {"hip-hop": "hiphop"}
    assert "not on GTZAN's splits" in doc["protocol"] and doc["mlflow"] is None
    by = {Path(r["file"]).name: r for r in doc["files"]}
    assert by["f.wav"]["status"] == "skipped" and by["f.wav"]["predicted"] is None
    assert (
        by["broken.mp3"]["status"] == "error"
        and "not a readable audio file" in (by["broken.mp3"]["error"])
    )
    assert by["e.wav"]["class"] == "hiphop" and by["e.wav"]["correct"] is False
    assert by["a.wav"]["class"] == "jazz" and by["a.wav"]["predicted"] == "jazz"  # case ignored
    assert by["c.wav"]["correct"] is True
    scored = [r for r in doc["files"] if r["status"] == "scored"]
    truth, pred = [r["class"] for r in scored], [r["predicted"] for r in scored]
    metrics = doc["metrics"]
    assert metrics["n"] == 5 and metrics["confusion"]["labels"] == ["hiphop", "jazz", "rock"]
    assert metrics["accuracy"]["value"] == pytest.approx(skm.accuracy_score(truth, pred))
    assert metrics["accuracy"]["value"] == pytest.approx(4 / 5)
    assert metrics["macro_f1"]["value"] == pytest.approx(
        skm.f1_score(truth, pred, labels=["hiphop", "jazz", "rock"], average="macro")
    )
    assert metrics["recall"]["hiphop"]["value"] == 0.0
    assert metrics["bootstrap"]["n_boot"] == 500
    for r in scored:
        probas = [v for k, v in r.items() if k.startswith("proba_")]
        assert len(probas) == 10 and sum(probas) == pytest.approx(1.0, abs=1e-5)
    # the page, beside the output by default, in the leaderboard's style, self-contained
    page = (tmp_path / "out" / "eval.html").read_text()
    assert "genrebench evaluation" in page and "not on GTZAN&#39;s splits" in page
    assert re.search(r'data-metric="accuracy" data-value="0.8"', page)
    assert 'data-metric="recall_hiphop" data-value="0.0"' in page
    assert 'class="skipped-label"><td>polka</td>' in page and "broken.mp3" in page
    assert "--accent: #0969da" in page  # the leaderboard's styles, inline
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert len(re.findall(r"data-count=", page)) == 3 * len(metrics["confusion"]["predicted"])


def test_cli_csv_input_writes_rows_and_metrics_csv(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    music = tmp_path / "music"
    shutil.copytree(trained["songs"] / "rock", music / "r")
    shutil.copy(trained["songs"] / "Jazz" / "a.wav", music / "a.wav")
    (music / "labels.csv").write_text("path,label\na.wav,jazz\nr/c.wav,rock\nr/d.flac,Rock\n")
    monkeypatch.chdir(tmp_path)
    code, stdout, err = _run(
        str(music / "labels.csv"),
        "--model",
        str(trained["dir"]),
        "--output",
        "res.csv",
        "--n-boot",
        "300",
    )
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "res.csv")
    assert list(rows["status"]) == ["scored"] * 3 and rows["correct"].all()
    assert [Path(f).name for f in rows["file"]] == ["a.wav", "c.wav", "d.flac"]
    assert {"file", "label", "class", "predicted", "probability", "error", "proba_jazz"} <= set(
        rows.columns
    )
    table = pd.read_csv(tmp_path / "res.metrics.csv")
    acc = table.set_index("metric").loc["accuracy"]
    assert acc["value"] == 1.0 and acc["n"] == 3
    recall = table[table["metric"] == "recall"].set_index("class")
    assert recall.loc["rock", "n"] == 2 and recall.loc["jazz", "value"] == 1.0
    assert (tmp_path / "res.html").is_file()
    code, _, err = _run(
        str(music / "labels.csv"), "--model", str(trained["dir"]), "--no-html", "--n-boot", "50"
    )
    assert code == 0 and not (tmp_path / "evaluation.html").exists()
    code, _, err = _run(str(music / "labels.csv"), "--model", str(trained["dir"]), "--n-boot", "50")
    assert code == 0 and (tmp_path / "evaluation.html").is_file()  # the default without --output


# --- MLflow ------------------------------------------------------------------------------------
def test_cli_logs_an_evaluation_run_linked_to_the_registered_version(
    trained: dict, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from benchmark.inference.serving import log_final_model
    from benchmark.storage import default_tracking_uri

    results = tmp_path / "results" / "unit"
    model_dir = results / "final_model"
    shutil.copytree(trained["dir"], model_dir)
    uri = default_tracking_uri(results)  # the results folder's store: evaluate's default too
    assert log_final_model(model_dir, uri, results) == "models:/genrebench-unit/1"
    music = tmp_path / "music"
    shutil.copytree(trained["songs"] / "rock", music / "rock")
    shutil.copytree(trained["songs"] / "polka", music / "polka")
    code, _, err = _run(
        str(music),
        "--model",
        str(model_dir),
        "--html",
        str(tmp_path / "page.html"),
        "--n-boot",
        "200",
    )
    assert code == 2, err  # broken.mp3 came along
    assert "linked to models:/genrebench-unit/1" in " ".join(err.split()), err
    client = MlflowClient(uri)
    # in an experiment of its own, not among the benchmark's cross-validated runs
    bench = client.get_experiment_by_name("unit")
    assert not client.search_runs([bench.experiment_id], "tags.`genrebench.kind` = 'evaluation'")
    exp = client.get_experiment_by_name("unit-evaluations")
    runs = client.search_runs([exp.experiment_id], "tags.`genrebench.kind` = 'evaluation'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["model_uri"] == "models:/genrebench-unit/1"
    assert run.data.tags["genrebench.model_version"] == "models:/genrebench-unit/1"
    m = run.data.metrics
    assert m["eval_accuracy"] == 1.0 and m["eval_n_scored"] == 2 and m["eval_n_failed"] == 1
    assert m["eval_n_skipped"] == 1 and m["eval_recall_rock"] == 1.0
    assert {"eval_accuracy_ci_low", "eval_accuracy_ci_high", "eval_macro_f1"} <= set(m)
    assert not [k for k in m if not k.startswith("eval_")]  # none named like a CV score
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "music"
    assert {t.key: t.value for t in dataset.tags}["mlflow.data.context"] == "evaluation"
    schema = json.loads(dataset.dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == ["path", "label", "class"]
    # MLflow 3: the version's logged model is an input of the run, and holds its metrics
    (logged_model,) = client.search_logged_models(experiment_ids=[bench.experiment_id])
    assert client.get_model_version("genrebench-unit", "1").source == logged_model.model_uri
    inputs = client.get_run(run.info.run_id).inputs  # search_runs leaves model inputs out
    assert [i.model_id for i in inputs.model_inputs] == [logged_model.model_id]
    linked = client.get_logged_model(logged_model.model_id).metrics or []
    assert {x.key for x in linked if x.run_id == run.info.run_id} >= {
        "eval_accuracy",
        "eval_macro_f1",
    }
    assert {x.dataset_name for x in linked if x.run_id == run.info.run_id} == {"music"}
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert arts == {
        "evaluation/files.csv",
        "evaluation/evaluation.json",
        "evaluation/evaluation.html",
    }
    local = Path(client.download_artifacts(run.info.run_id, "evaluation", str(tmp_path / "a")))
    logged = json.loads((local / "evaluation.json").read_text())
    assert logged["mlflow"]["model_uri"] == "models:/genrebench-unit/1"
    assert len(pd.read_csv(local / "files.csv")) == 4
    assert run.info.run_id in (tmp_path / "page.html").read_text()
    # --no-tracking logs nothing; an unregistered model gets a run without a link
    code, _, _ = _run(
        str(music), "--model", str(model_dir), "--no-tracking", "--no-html", "--n-boot", "50"
    )
    assert (
        len(client.search_runs([exp.experiment_id], "tags.`genrebench.kind` = 'evaluation'")) == 1
    )
    other = save_model(
        tmp_path / "other",
        load_model(model_dir).estimator,
        {
            "feature_set": "librosa_30s",
            "feature_params": {"seconds": 6},
            "classes": list(load_manifest("gtzan").classes),
        },
    )
    code, _, err = _run(
        str(music), "--model", str(other), "--tracking-uri", uri, "--no-html", "--n-boot", "50"
    )
    assert "(model not registered)" in err, err
    exp2 = client.get_experiment_by_name("genrebench-evaluations")
    (run2,) = client.search_runs([exp2.experiment_id])
    assert run2.data.params["model_uri"] == "not registered"


# --- the shared FLAC clips ----------------------------------------------------------------------
@pytest.mark.integration
def test_evaluate_shared_clips_held_out_from_a_csv_model(real_gtzan: Path, tmp_path: Path) -> None:
    """A csv_30s model trained on Kaggle's rows of the other tracks, evaluated on a labelled
    folder of 20 held-out shared FLAC clips: every clip is scored, and the accuracy from audio
    is the accuracy its CSV rows get, within the two clips librosa's recomputation may flip."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from benchmark.data import Dataset

    ds = Dataset.open(real_gtzan)
    csv = ds.features_csv(segmented=False)
    audio = ds.tracks.dropna(subset=["audio_path"]).set_index("track_id")["audio_path"]
    held = [t for t in sorted(audio.index) if t.endswith(("00", "1", "2"))][:20]
    if len(held) < 10:
        pytest.skip("the shared copy holds too few audio clips")
    cols = ds.manifest.csv_feature_columns
    train = csv[~csv["track_id"].isin(held)]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    with threadpool_limits(1):
        model.fit(train[cols].to_numpy(), ds.labels_of(train["track_id"]))
    model_dir = save_model(tmp_path / "m", model, {"feature_set": "csv_30s", "classes": ds.classes})
    folder = tmp_path / "labelled"
    for t in held:
        dest = folder / ds.tracks.set_index("track_id").loc[t, "genre"] / Path(audio[t]).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(audio[t])
    ev = evaluate_songs(load_model(model_dir), read_labelled(folder), n_boot=200)
    assert ev.count("scored") == len(held) and not ev.failed and not ev.skipped_labels
    rows = csv.set_index("track_id").loc[held]
    csv_pred = model.predict_proba(rows[cols].to_numpy()).argmax(axis=1)
    csv_correct = int(np.sum(csv_pred == ds.labels_of(held)))
    audio_correct = sum(bool(r["correct"]) for r in ev.rows)
    assert abs(audio_correct - csv_correct) <= 2, (audio_correct, csv_correct)
    assert ev.metrics.accuracy.value == pytest.approx(audio_correct / len(held))
    assert ev.metrics.accuracy.ci_low <= ev.metrics.accuracy.value <= ev.metrics.accuracy.ci_high
