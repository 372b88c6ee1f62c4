"""Any collection in the GTZAN layout (``<root>/genres_original/<class>/<file>``) with any class
names, counts and file names runs end to end through the ``folder`` dataset manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_gtzan import write_wav

from benchmark.data import Dataset, load_manifest, read_features_csv, track_id_in_class
from benchmark.errors import DataError

#: class -> (tone Hz, file names): uneven counts, names that are not GTZAN ids
COLLECTION = {
    "lofi": (220.0, ["night drive", "rain.v2", "tape", "slow", "dusk"]),
    "chip-tune": (880.0, ["level 1", "boss", "menu", "chip 07", "8bit", "coin", "jump"]),
    "hip hop": (440.0, ["track01", "cypher", "block", "mic", "beat"]),
}


def _tone(path: Path, freq: float, seconds: float, seed: int) -> None:
    write_wav(path, freq, seconds, np.random.default_rng(seed))


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mine") / "music"
    seed = 0
    for label, (freq, names) in COLLECTION.items():
        for name in names:
            seed += 1
            _tone(root / "genres_original" / label / f"{name}.wav", freq, 3.0, seed)
    return root


def test_classes_and_track_ids_come_from_the_folders(collection: Path) -> None:
    assert load_manifest("folder").classes is None
    ds = Dataset.open(collection, "folder")
    assert ds.classes == sorted(COLLECTION)
    tracks = ds.tracks
    assert len(tracks) == sum(len(n) for _, n in COLLECTION.values())
    assert tracks.groupby("genre").size().to_dict() == {
        k: len(n) for k, (_, n) in COLLECTION.items()
    }
    assert "lofi.night drive" in set(tracks["track_id"])
    assert "lofi.rain.v2" in set(tracks["track_id"])
    labels = ds.labels_of(tracks["track_id"])
    assert [ds.classes[i] for i in labels] == tracks["genre"].tolist()
    errors, notes = ds.check()
    assert errors == [], errors
    assert not any("differ from" in n for n in notes)  # no expected count per class


def test_data_check_lists_the_classes_it_found(collection: Path) -> None:
    out = _genrebench("data", "check", "--manifest", "folder", "--data-dir", str(collection))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok: 17 tracks" in out.stdout
    assert "classes (3): chip-tune, hip hop, lofi" in out.stdout


def test_the_gtzan_manifest_still_refuses_unknown_genres(collection: Path) -> None:
    with pytest.raises(DataError, match=r"8bit.wav.*use `dataset: folder`"):
        _ = Dataset.open(collection, "gtzan").tracks


def test_unusable_class_names_are_refused_in_one_line(tmp_path: Path) -> None:
    _tone(tmp_path / "genres_original" / "drum.n.bass" / "a.wav", 200.0, 1.0, 0)
    with pytest.raises(DataError, match="class name 'drum.n.bass' cannot be used"):
        _ = Dataset.open(tmp_path, "folder").classes
    with pytest.raises(DataError, match="class name"):
        track_id_in_class("a.wav", "")


def test_gtzan_names_in_their_own_class_keep_their_ids() -> None:
    assert track_id_in_class("blues.00012.wav", "blues") == ("blues.00012", None)
    assert track_id_in_class("blues00012.png", "blues") == ("blues.00012", None)
    # a GTZAN name filed under another class belongs to that class
    assert track_id_in_class("rock.00016.wav", "metal") == ("metal.rock.00016", None)
    assert track_id_in_class("my song.3.wav", "pop", segmented=True) == ("pop.my song", 3)


def test_a_feature_csv_with_any_labels_reads_under_the_folder_manifest(tmp_path: Path) -> None:
    m = load_manifest("folder")
    cols = m.csv_feature_columns
    rows = [
        {"filename": "night drive.wav", "length": 661794, "label": "lofi"},
        {"filename": "boss.wav", "length": 661794, "label": "chip-tune"},
    ]
    df = pd.DataFrame([{**r, **{c: 0.5 for c in cols}} for r in rows])
    df = df[["filename", "length", *cols, "label"]]
    path = tmp_path / "features_30_sec.csv"
    df.to_csv(path, index=False)
    out = read_features_csv(path, m, segmented=False)
    assert out["track_id"].tolist() == ["lofi.night drive", "chip-tune.boss"]
    with pytest.raises(DataError, match="unknown genre label 'chip-tune' at row 3"):
        read_features_csv(path, load_manifest("gtzan"), segmented=False)


def _genrebench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, timeout=600
    )


def _run_folder(collection: Path, tmp_path: Path, config: Path) -> Path:
    """``genrebench run`` of ``config`` (one extending ``folder``) on the collection; its
    results."""
    results = tmp_path / "results"
    run = _genrebench(
        "run", "--config", str(config), "--data-dir", str(collection),
        "--results-dir", str(results), "--no-tracking",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return results


def test_run_export_and_predict_on_a_collection_with_any_classes(
    collection: Path, tmp_path: Path, make_config
) -> None:
    """The whole path a user with their own music takes: audio features, tuning, results,
    the exported model and `genrebench predict`, with three classes of uneven size."""
    config = make_config.file(
        name="mine",
        extends="folder",
        feature_sets=["librosa_30s"],
        families=["lda", "logreg"],
        protocols={"stratified_kfold": {"n_folds": 3}},
        inner_folds=2,
        n_trials=2,
        n_jobs=1,
        baseline={"feature_set": "librosa_30s", "family": "lda"},
    )
    results = _run_folder(collection, tmp_path, config)
    res = pd.read_parquet(results / "mine" / "results.parquet")
    res = res[res["feature_set"] != "ensemble"]
    assert set(res["status"]) == {"done"} and len(res) == 2 * 3
    assert (res["n_test"].groupby(res["family"]).sum() == 17).all()
    pred = pd.read_parquet(results / "mine" / "predictions.parquet")
    assert set(pred["y_true"]) == set(COLLECTION)
    assert {f"proba_{c}" for c in COLLECTION} <= set(pred.columns)
    # tones of three pitches: every class is learnable
    assert res["accuracy"].mean() > 0.8, res[["family", "fold", "accuracy"]]

    clip = tmp_path / "new song.wav"
    _tone(clip, 880.0, 3.0, 99)
    out = _genrebench("predict", str(clip), "--results-dir", str(results), "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    top = doc["predictions"][0]["genres"]
    assert top[0]["genre"] == "chip-tune", doc
    assert {t["genre"] for t in top} <= set(COLLECTION)


def test_spectrogram_pairs_run_on_a_folder_without_images(
    collection: Path, tmp_path: Path, make_config
) -> None:
    """No images_original/: spectrogram_img is drawn from the audio as Kaggle drew its PNGs,
    its pairs run, and the exported spectrogram model classifies a new song."""
    assert not (collection / "images_original").exists()
    config = make_config.file(
        name="img",
        extends="folder",
        feature_sets=["spectrogram_img"],
        feature_params={"spectrogram_img": {"seconds": 3}},
        families=["lda", "logreg"],
        protocols={"stratified_kfold": {"n_folds": 3}},
        inner_folds=2,
        n_trials=1,
        n_jobs=1,
        ensembles=False,
        baseline={"feature_set": "spectrogram_img", "family": "lda"},
    )
    results = _run_folder(collection, tmp_path, config)
    res = pd.read_parquet(results / "img" / "results.parquet")
    assert set(res["feature_set"]) == {"spectrogram_img"} and set(res["status"]) == {"done"}
    assert (res["n_test"].groupby(res["family"]).sum() == 17).all()
    meta = json.loads((results / "img" / "final_model" / "model.json").read_text())
    assert meta["feature_set"] == "spectrogram_img"
    clip = tmp_path / "another song.wav"
    _tone(clip, 880.0, 3.0, 98)
    out = _genrebench("predict", str(clip), "--results-dir", str(results), "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    top = json.loads(out.stdout)["predictions"][0]["genres"]
    assert {t["genre"] for t in top} <= set(COLLECTION)
