"""Saved models and ``genrebench predict``: save/load, finding the newest model, predicting
synthesized clips end to end, the one-line errors, and (integration) the shared FLAC clips."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")
import soundfile as sf  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fake_gtzan import genre_tone  # noqa: E402
from helpers import save_unit_model  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmark.cli import main  # noqa: E402
from benchmark.data import Dataset, load_manifest  # noqa: E402
from benchmark.features import get_feature_set  # noqa: E402
from benchmark.inference.predict import predict_file  # noqa: E402
from benchmark.inference.saved_model import ModelError, find_model, load_model, save_model  # noqa: E402

SR = 22050
GENRES = ("blues", "country", "jazz", "rock")


def fake_tone(genre: str, seconds: float, seed: int) -> np.ndarray:
    return genre_tone(GENRES, genre, seconds, seed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A logistic regression trained on librosa_30s features of fake tones, saved."""
    tmp = tmp_path_factory.mktemp("predict")
    unit = save_unit_model(tmp, GENRES)
    model_dir, ds, fm, model = unit.dir, unit.ds, unit.fm, unit.model
    songs = tmp / "songs"
    songs.mkdir()
    sf.write(songs / "jazz_like.wav", fake_tone("jazz", 6.0, seed=99), SR)
    sf.write(songs / "rock_like.flac", fake_tone("rock", 6.0, seed=98), SR)
    long = fake_tone("blues", 15.0, seed=97)  # 6-s windows: 0-6, 6-12 and 12-15 s
    sf.write(songs / "long_blues.ogg", long, SR, format="OGG", subtype="VORBIS")
    return {"dir": model_dir, "songs": songs, "ds": ds, "fm": fm, "model": model, "tmp": tmp}


def test_save_and_load_round_trip(trained: dict) -> None:
    saved = load_model(trained["dir"])
    assert saved.feature_set == "librosa_30s" and saved.input_kind == "tabular"
    assert saved.classes == load_manifest("gtzan").classes
    assert saved.meta["pair"]["family"] == "logreg"
    assert saved.meta["versions"]["scikit-learn"] and saved.meta["saved_at"]
    X = trained["fm"].X[:3]
    np.testing.assert_allclose(saved.estimator.predict_proba(X), trained["model"].predict_proba(X))


def test_save_model_validates(tmp_path: Path, trained: dict) -> None:
    model = trained["model"]
    with pytest.raises(ModelError, match="classes"):
        save_model(tmp_path / "a", model, {"feature_set": "librosa_30s"})
    with pytest.raises(ModelError, match="unknown feature set"):
        save_model(tmp_path / "b", model, {"feature_set": "nope", "classes": ["a", "b"]})
    named = LogisticRegression().fit(np.eye(2), ["x", "y"])
    with pytest.raises(ModelError, match="class indices"):
        save_model(tmp_path / "c", named, {"feature_set": "librosa_30s", "classes": ["x", "y"]})


def test_load_model_errors(tmp_path: Path, trained: dict) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "none")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.json").write_text("{}")
    with pytest.raises(ModelError, match="model.joblib is missing"):
        load_model(tmp_path / "half")
    (tmp_path / "half" / "model.joblib").write_bytes(b"not a pickle")
    (tmp_path / "half" / "model.json").write_text('{"feature_set": "librosa_30s", "classes": []}')
    with pytest.raises(ModelError, match="cannot be loaded"):
        load_model(tmp_path / "half")


def test_find_model_newest_or_a_clear_error(tmp_path: Path, trained: dict) -> None:
    with pytest.raises(ModelError, match="no saved model found.*--model"):
        find_model(tmp_path)
    meta = {"feature_set": "librosa_30s", "classes": trained["ds"].classes}
    old = save_model(tmp_path / "a" / "final_model", trained["model"], meta)
    new = save_model(tmp_path / "b" / "final_model", trained["model"], meta)
    os.utime(old / "model.json", (time.time() - 100, time.time() - 100))
    assert find_model(tmp_path) == new


def test_predicts_a_synthesized_clip(trained: dict) -> None:
    model = load_model(trained["dir"])
    for name, genre in (("jazz_like.wav", "jazz"), ("rock_like.flac", "rock")):
        pred = predict_file(model, trained["songs"] / name)
        assert pred.top(1)[0][0] == genre, pred.top(3)
        assert pred.proba.sum() == pytest.approx(1.0)
        assert pred.windows == 1 and pred.seconds == pytest.approx(6.0, abs=0.01)


def test_cli_predict_text_json_and_windows(trained: dict) -> None:
    runner = CliRunner()
    songs = trained["songs"]
    res = runner.invoke(
        main, ["predict", str(songs / "jazz_like.wav"), "--model", str(trained["dir"])]
    )
    assert res.exit_code == 0, res.output
    line = [ln for ln in res.stdout.splitlines() if "jazz_like.wav" in ln]
    assert line and line[0].split(": ", 1)[1].startswith("jazz ")
    assert line[0].count(" · ") == 2  # top 3

    res = runner.invoke(
        main,
        [
            "predict",
            str(songs / "long_blues.ogg"),
            "--model",
            str(trained["dir"]),
            "--json",
            "--windows",
            "--top-k",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    pred = doc["predictions"][0]
    assert doc["feature_set"] == "librosa_30s" and doc["pair"]["family"] == "logreg"
    assert pred["windows"] == 3 and pred["window_genres"] == ["blues"] * 3
    assert len(pred["genres"]) == 2 and pred["genres"][0]["genre"] == "blues"
    assert pred["seconds"] == pytest.approx(15.0, abs=0.1)


def test_cli_default_model_is_the_newest_final_model(trained: dict) -> None:
    runner = CliRunner()
    results = trained["dir"].parent.parent
    res = runner.invoke(
        main, ["predict", str(trained["songs"] / "rock_like.flac"), "--results-dir", str(results)]
    )
    assert res.exit_code == 0, res.output
    assert "rock_like.flac: rock" in res.stdout
    res = runner.invoke(main, ["predict", "x.wav", "--results-dir", str(results / "nothing")])
    assert res.exit_code == 2
    assert "no saved model found" in res.output


def test_cli_errors_are_one_line_each(trained: dict, tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("not audio at all\n" * 10)
    (tmp_path / "empty.mp3").write_bytes(b"")
    sf.write(tmp_path / "silent.wav", np.zeros(3 * SR, np.float32), SR)
    sf.write(tmp_path / "short.wav", fake_tone("rock", 0.4, seed=1), SR)
    cases = {
        "missing.wav": "no such file",
        "text.wav": "not a readable audio file",
        "empty.mp3": "empty file",
        "silent.wav": "silent",
        "short.wav": "at least 1 s",
    }
    runner = CliRunner()
    for name, text in cases.items():
        res = runner.invoke(main, ["predict", str(tmp_path / name), "--model", str(trained["dir"])])
        assert res.exit_code == 2, (name, res.output)
        errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and text in errors[0] and name in errors[0], res.output
        assert "Traceback" not in res.output
    # one bad file among good ones: the others are still predicted, the exit status says so
    res = runner.invoke(
        main,
        [
            "predict",
            str(tmp_path / "text.wav"),
            str(trained["songs"] / "jazz_like.wav"),
            "--model",
            str(trained["dir"]),
            "--json",
        ],
    )
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert (
        "error" in doc["predictions"][0] and doc["predictions"][1]["genres"][0]["genre"] == "jazz"
    )


def test_csv_models_use_librosa_extraction_and_image_models_render_the_spectrogram(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    classes = trained["ds"].classes
    # a model trained on csv_30s columns takes the same 57 features computed from audio
    csv_dir = save_model(
        tmp_path / "csv", trained["model"], {"feature_set": "csv_30s", "classes": classes}
    )
    pred = predict_file(load_model(csv_dir), trained["songs"] / "jazz_like.wav")
    assert pred.top(1)[0][0] == "jazz"
    # a spectrogram_img model: the song is drawn as Kaggle drew its PNGs, then read back
    ds = trained["ds"]
    params = {"source": "audio", "seconds": 6, "n_jobs": 1}
    fset = get_feature_set("spectrogram_img", **params)
    fm = fset.load(ds, "tabular", trained["tmp"] / "cache")
    img_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    img_model.fit(fm.X, ds.labels_of(fm.row_track))
    meta = {"feature_set": "spectrogram_img", "feature_params": params, "classes": classes}
    img_dir = save_model(tmp_path / "img", img_model, meta)
    song = trained["songs"] / "jazz_like.wav"
    pred = predict_file(load_model(img_dir), song)
    from benchmark.audio.decoding import load_clip

    rows = fset.clip_rows(load_clip(song, fset.sample_rate, fset.seconds), "tabular")
    expected = np.zeros(len(classes))
    expected[img_model.classes_] = img_model.predict_proba(rows).mean(axis=0)
    assert np.allclose(pred.proba, expected)
    # a feature set with no way from audio is refused in one line
    from benchmark.features.spectrogram import SpectrogramImages

    monkeypatch.setattr(SpectrogramImages, "computed_from_audio_by", None)
    res = CliRunner().invoke(main, ["predict", str(song), "--model", str(img_dir)])
    assert res.exit_code == 2 and "not computed from audio" in res.output


def test_segment_model_averages_its_segments(trained: dict, tmp_path: Path) -> None:
    ds = trained["ds"]
    fm = get_feature_set("librosa_3s", n_jobs=1).load(ds, "tabular", trained["tmp"] / "cache")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(fm.X, ds.labels_of(fm.row_track))
    meta = {"feature_set": "csv_3s", "classes": ds.classes}
    saved = load_model(save_model(tmp_path / "seg", model, meta))
    pred = predict_file(saved, trained["songs"] / "rock_like.flac")  # 6 s: two 3-s segments
    assert pred.top(1)[0][0] == "rock"


# --- the shared FLAC clips ----------------------------------------------------------------------
@pytest.mark.integration
def test_predict_shared_clips_with_a_csv_model(real_gtzan: Path, tmp_path: Path) -> None:
    """A model trained on Kaggle's CSV (other tracks) predicts shared FLAC clips from audio,
    with the probabilities it gives their CSV rows."""
    ds = Dataset.open(real_gtzan)
    csv = ds.features_csv(segmented=False)
    audio = ds.tracks.dropna(subset=["audio_path"]).set_index("track_id")["audio_path"]
    held = [t for t in ("blues.00000", "metal.00003", "classical.00001") if t in audio.index]
    if len(held) < 2:
        pytest.skip("the shared copy lacks the chosen clips")
    cols = ds.manifest.csv_feature_columns
    train = csv[~csv["track_id"].isin(held)]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    with threadpool_limits(1):  # tiny matrices: BLAS threads only contend
        model.fit(train[cols].to_numpy(), ds.labels_of(train["track_id"]))
    model_dir = save_model(tmp_path / "m", model, {"feature_set": "csv_30s", "classes": ds.classes})
    res = CliRunner().invoke(
        main, ["predict", *[str(audio[t]) for t in held], "--model", str(model_dir), "--json"]
    )
    assert res.exit_code == 0, res.output
    preds = json.loads(res.stdout)["predictions"]
    assert len(preds) == len(held)
    rows = csv.set_index("track_id").loc[held, cols].to_numpy()
    from_csv = model.predict_proba(rows)
    for pred, p_csv in zip(preds, from_csv, strict=True):
        assert len(pred["genres"]) == 3
        top = pred["genres"][0]
        assert top["genre"] == ds.classes[int(np.argmax(p_csv))]
        assert top["probability"] == pytest.approx(float(p_csv.max()), abs=0.05)


def test_cli_predict_a_folder_to_csv_one_row_per_file(trained: dict, tmp_path: Path) -> None:
    """``predict DIR --output preds.csv``: every audio file under DIR (recursive), good or bad,
    is one row; the bad ones carry their error and the exit status says some failed."""
    import shutil

    music = tmp_path / "music"
    (music / "album").mkdir(parents=True)
    shutil.copy(trained["songs"] / "jazz_like.wav", music / "a.wav")
    shutil.copy(trained["songs"] / "rock_like.flac", music / "album" / "b.flac")
    (music / "album" / "notes.mp3").write_text("these are liner notes, not audio\n" * 20)
    (music / "empty.ogg").write_bytes(b"")
    (music / "cover.jpg").write_bytes(b"\xff\xd8 not music")  # not audio by name: not a row
    (music / ".hidden.wav").write_bytes(b"")  # hidden: never music
    out_csv = tmp_path / "preds.csv"
    res = CliRunner().invoke(
        main, ["predict", str(music), "--model", str(trained["dir"]), "--output", str(out_csv)]
    )
    assert res.exit_code == 2, res.output
    import pandas as pd

    table = pd.read_csv(out_csv)
    assert sorted(Path(f).name for f in table["file"]) == [
        "a.wav",
        "b.flac",
        "empty.ogg",
        "notes.mp3",
    ]
    by = {Path(f).name: r for f, (_, r) in zip(table["file"], table.iterrows(), strict=True)}
    assert by["a.wav"]["genre"] == "jazz" and by["b.flac"]["genre"] == "rock"
    assert pd.isna(by["a.wav"]["error"]) and by["a.wav"]["probability"] > 0
    assert "empty file" in by["empty.ogg"]["error"]
    assert "not a readable audio file" in by["notes.mp3"]["error"]
    probas = table.filter(like="proba_")
    assert probas.shape[1] == len(trained["ds"].classes)
    assert np.allclose(probas.loc[table["error"].isna()].sum(axis=1), 1.0, atol=1e-5)
    # JSON too, and a folder without audio is one clear line
    out_json = tmp_path / "preds.json"
    res = CliRunner().invoke(
        main,
        [
            "predict",
            str(music / "album"),
            "--model",
            str(trained["dir"]),
            "--output",
            str(out_json),
        ],
    )
    assert len(json.loads(out_json.read_text())) == 2
    (tmp_path / "none").mkdir()
    res = CliRunner().invoke(
        main, ["predict", str(tmp_path / "none"), "--model", str(trained["dir"])]
    )
    assert res.exit_code != 0 and "no audio files" in res.output
    res = CliRunner().invoke(main, ["predict", "", "--model", str(trained["dir"])])
    assert res.exit_code != 0 and "an empty path names no file" in res.output
