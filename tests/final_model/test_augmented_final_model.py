"""A benchmark with ``augment`` on an audio set, end to end: the copies reach no score, the final
model is trained with them and ``model.json`` says so, and ``predict`` and ``evaluate`` still
warn of band-limited input (augmentation makes a model more robust, it does not widen a file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("librosa")
import librosa  # noqa: E402
import soundfile as sf  # noqa: E402
from fake_gtzan import genre_tone, make_fake_gtzan  # noqa: E402

from benchmark.config import load_config  # noqa: E402
from benchmark.execution.local import plan_and_run  # noqa: E402
from benchmark.execution.plan import RunOptions  # noqa: E402
from benchmark.final_model.export import export_from_results  # noqa: E402
from benchmark.inference.predict import predict_file
from benchmark.inference.saved_model import load_model  # noqa: E402
from benchmark.inference.song_evaluation import evaluate_songs, read_labelled  # noqa: E402

SR = 22050
GENRES = ("blues", "country", "jazz", "rock")
CONFIG = """\
name: aug
seed: 4
feature_sets: [librosa_30s]
feature_params:
  librosa_30s: {seconds: 6, n_jobs: 1, augment: {copies: [resample, mp3, gain]}}
families: [logreg]
protocols:
  artist_kfold: {n_folds: 2}
inner_folds: 2
n_trials: 1
n_jobs: 1
baseline: {feature_set: librosa_30s, family: logreg}
ensembles: false
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("augmented")
    root = make_fake_gtzan(
        tmp / "gtzan", genres=GENRES, n_per_genre=4, with_audio=True, audio_seconds=6.0,
        with_images=False, with_csv_3s=False,
    )  # fmt: skip
    (tmp / "aug.yaml").write_text(CONFIG)
    cfg = load_config(str(tmp / "aug.yaml"))
    result = plan_and_run(cfg, RunOptions(data_dir=str(root), results_root=tmp, track=False))
    songs = tmp / "songs"
    for genre in ("jazz", "rock"):
        y = genre_tone(GENRES, genre, 6.0, seed=50)
        (songs / genre).mkdir(parents=True)
        sf.write(songs / genre / "full.wav", y, SR)
        at16k = librosa.resample(y, orig_sr=SR, target_sr=16000, res_type="soxr_hq")
        sf.write(songs / genre / "at16k.flac", at16k, 16000)
    return {"results": result.results_dir, "model": export_from_results(result.results_dir)}


def test_copies_reach_no_score_and_every_track_is_scored_once(exported: dict[str, Path]) -> None:
    preds = pd.read_parquet(exported["results"] / "predictions.parquet")
    assert preds["track_id"].is_unique and len(preds) == 16  # two folds, one row per track
    inner = pd.read_parquet(exported["results"] / "inner_predictions.parquet")
    for _, g in inner.groupby("fold"):
        assert g["track_id"].is_unique  # one out-of-fold row per training track, no copy


def test_model_json_records_the_augmentation(exported: dict[str, Path]) -> None:
    meta = json.loads((exported["model"] / "model.json").read_text())
    aug = meta["augmentation"]
    assert aug["copies"] == ["resample", "mp3", "gain"] and aug["seed"] == 4
    assert aug["training_rows"] == 16 * 4 and aug["copy_rows"] == 16 * 3
    assert meta["feature_params"]["augment"] == {"copies": ["resample", "mp3", "gain"]}
    assert meta["n_tracks"] == 16
    # the training band is measured on the clips as found: full band
    assert meta["training_audio"]["bandwidth_hz"] > 10000


def test_predict_and_evaluate_still_warn_of_band_limited_input(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    model = load_model(exported["model"])
    songs = exported["results"].parent / "songs"
    assert predict_file(model, songs / "jazz" / "full.wav").warning is None
    warned = predict_file(model, songs / "jazz" / "at16k.flac").warning
    assert warned is not None and warned.startswith("band-limited input")
    ev = evaluate_songs(model, read_labelled(songs), n_boot=50)
    by_file = {Path(r["file"]).name + r["label"]: r for r in ev.rows}
    for genre in ("jazz", "rock"):
        assert by_file["full.wav" + genre]["warning"] is None
        assert str(by_file["at16k.flac" + genre]["warning"]).startswith("band-limited input")
    assert np.isfinite(ev.metrics.accuracy.value)
