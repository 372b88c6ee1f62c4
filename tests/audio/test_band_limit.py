"""Band-limited input (issue 17): ``predict`` measures each file's sample rate and bandwidth and
warns when it is narrower than the training audio; ``band_limit_hz`` makes the audio features of
a full-band clip those of its band-limited copy. On clips generated here (tones over noise, whose
noise fills the whole band as music does)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")
import librosa  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fake_gtzan import genre_tone  # noqa: E402
from helpers import SR, UNIT_GENRES, write_clip, write_genre_folder  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from benchmark.audio.band_limit import FileBand, TrainingBand, band_edge_hz, band_warning, low_pass
from benchmark.audio.decoding import Clip  # noqa: E402
from benchmark.cli import main  # noqa: E402
from benchmark.data import Dataset, load_manifest  # noqa: E402
from benchmark.errors import ConfigError  # noqa: E402
from benchmark.features import get_feature_set  # noqa: E402
from benchmark.final_model.export import training_band  # noqa: E402
from benchmark.inference.predict import predict_file
from benchmark.inference.saved_model import load_model, save_model  # noqa: E402

GENRES = UNIT_GENRES


def tone(genre: str, seconds: float, seed: int) -> np.ndarray:
    return genre_tone(GENRES, genre, seconds, seed)


def to_16k(y: np.ndarray) -> np.ndarray:
    return librosa.resample(y, orig_sr=SR, target_sr=16000, res_type="soxr_hq")


def _train(ds: Dataset, cache: Path, out: Path, **params: object) -> Path:
    """A logistic regression on librosa_30s of the 6-s clips, saved as the exporter saves it."""
    params = {"seconds": 6, "n_jobs": 1, **params}
    fm = get_feature_set("librosa_30s", **params).load(ds, "tabular", cache)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(fm.X, ds.labels_of(fm.row_track))
    meta = {"feature_set": "librosa_30s", "feature_params": params, "classes": ds.classes}
    meta["training_audio"] = training_band(ds, model, meta).to_dict()
    return save_model(out, model, meta)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bandwidth")
    root = write_genre_folder(tmp / "gtzan", GENRES, n_per_genre=4, seconds=6.0)
    ds = Dataset(root, load_manifest("gtzan"))
    songs = tmp / "songs"
    jazz = tone("jazz", 6.0, seed=99)
    write_clip(songs / "full.wav", jazz)
    write_clip(songs / "at16k.flac", to_16k(jazz), 16000)
    write_clip(songs / "lowpassed.wav", low_pass(jazz, SR, 4000))  # a 22 050 Hz file
    return {
        "full_model": _train(ds, tmp / "cache", tmp / "full_model"),
        "limited_model": _train(ds, tmp / "cache", tmp / "limited_model", band_limit_hz=7500),
        "songs": songs,
        "ds": ds,  # type: ignore[dict-item]
    }


def test_the_band_edge_is_where_content_stops_not_where_energy_is() -> None:
    noise = tone("jazz", 3.0, seed=1)
    assert band_edge_hz(noise, SR) > 10500  # full band up to Nyquist (11 025 Hz)
    assert 7200 < band_edge_hz(librosa.resample(to_16k(noise), orig_sr=16000, target_sr=SR), SR)
    assert band_edge_hz(librosa.resample(to_16k(noise), orig_sr=16000, target_sr=SR), SR) < 8000
    assert 3500 < band_edge_hz(low_pass(noise, SR, 4000), SR) < 4200
    assert band_edge_hz(np.zeros(SR, np.float32), SR) == 0.0


def test_the_exported_model_records_its_training_audio(setup: dict) -> None:
    band = load_model(setup["full_model"]).training_band
    assert band.source == "measured" and band.sample_rate == SR and band.clips == 16
    assert band.bandwidth_hz is not None and band.bandwidth_hz > 10000


def test_a_dataset_without_audio_declares_its_rate_or_says_unknown(tmp_path: Path) -> None:
    from benchmark.audio.band_limit import measure_training

    assert measure_training([], SR, declared_rate=22050) == TrainingBand("declared", 22050)
    assert measure_training([str(tmp_path / "none.wav")], SR).source == "unknown"
    assert (
        load_manifest("gtzan").sample_rate == 22050 and load_manifest("folder").sample_rate is None
    )


def test_predict_warns_for_band_limited_files_in_text(setup: dict) -> None:
    songs = setup["songs"]
    files = [str(songs / n) for n in ("full.wav", "at16k.flac", "lowpassed.wav")]
    res = CliRunner().invoke(main, ["predict", *files, "--model", str(setup["full_model"])])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    at = {Path(line.split(":")[0]).name: i for i, line in enumerate(lines) if ": " in line}
    after = {name: lines[i + 1] if i + 1 < len(lines) else "" for name, i in at.items()}
    assert "warning" not in after["full.wav"]
    assert after["at16k.flac"].startswith("  warning: band-limited input")
    assert "at 16000 Hz" in after["at16k.flac"]
    assert after["lowpassed.wav"].startswith("  warning: band-limited input")
    assert "2 file(s) band-limited" in res.output


def test_predict_reports_band_and_warning_in_json_and_csv(setup: dict, tmp_path: Path) -> None:
    songs = setup["songs"]
    out_csv = tmp_path / "p.csv"
    res = CliRunner().invoke(
        main,
        ["predict", str(songs / "full.wav"), str(songs / "at16k.flac"), "--json"]
        + ["--model", str(setup["full_model"]), "--output", str(out_csv)],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["training_audio"]["source"] == "measured"
    full, low = doc["predictions"]
    assert full["warning"] is None and full["sample_rate_hz"] == SR
    assert full["bandwidth_hz"] > 10000
    assert low["warning"].startswith("band-limited input") and low["sample_rate_hz"] == 16000
    assert low["bandwidth_hz"] < 8000
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[0]["warning"] == "" and rows[1]["warning"].startswith("band-limited")
    assert rows[1]["sample_rate_hz"] == "16000"


def test_a_model_without_a_training_record_still_reports_the_file(
    setup: dict, tmp_path: Path
) -> None:
    saved = load_model(setup["full_model"])
    meta = {k: v for k, v in saved.meta.items() if k != "training_audio"}
    old = save_model(tmp_path / "old", saved.estimator, meta)
    pred = predict_file(load_model(old), setup["songs"] / "at16k.flac")
    assert pred.warning is None
    assert pred.band is not None and pred.band.sample_rate == 16000
    assert pred.band.bandwidth_hz < 8000
    assert load_model(old).training_band.describe() == "training audio unknown"


def test_a_declared_rate_alone_flags_a_lower_rate_file() -> None:
    declared = TrainingBand("declared", 22050)
    assert band_warning(FileBand(16000, 7700.0), declared) is not None
    assert band_warning(FileBand(22050, 7700.0), declared) is None  # bandwidth unknown: rate only
    assert band_warning(FileBand(44100, 20000.0), declared) is None


def test_a_band_limited_model_does_not_warn_and_agrees_across_rates(setup: dict) -> None:
    model = load_model(setup["limited_model"])
    full = predict_file(model, setup["songs"] / "full.wav")
    at16k = predict_file(model, setup["songs"] / "at16k.flac")
    assert full.warning is None and at16k.warning is None
    assert full.top(1)[0][0] == at16k.top(1)[0][0] == "jazz"
    plain = load_model(setup["full_model"])
    plain_gap = np.abs(
        predict_file(plain, setup["songs"] / "full.wav").proba
        - predict_file(plain, setup["songs"] / "at16k.flac").proba
    ).sum()
    # the full-band model flips to another genre on the 16 kHz copy; the limited one agrees
    assert plain_gap > 1.0 and np.abs(full.proba - at16k.proba).sum() < plain_gap / 3
    # narrower than the limit itself is still flagged
    assert predict_file(model, setup["songs"] / "lowpassed.wav").warning is not None


def _clip(y: np.ndarray) -> Clip:
    return Clip(y, SR, len(y), "x")


@pytest.mark.parametrize("name", ["librosa_30s", "logmel"])
def test_band_limit_makes_full_band_features_match_the_16k_copy(name: str) -> None:
    # a beat (on/off at 2 Hz), as music has: a steady tone's variances are only its edges
    y = tone("rock", 6.0, seed=3)
    y *= 0.3 + 0.7 * (np.sin(2 * np.pi * 2 * np.arange(len(y)) / SR) > 0)
    copy = librosa.resample(to_16k(y), orig_sr=16000, target_sr=SR, res_type="soxr_hq")[: len(y)]
    copy = np.pad(copy, (0, len(y) - len(copy)))

    def gap(**params: object) -> float:
        fset = get_feature_set(name, seconds=6, **params)
        a, b = fset.clip_rows(_clip(y), "tabular"), fset.clip_rows(_clip(copy), "tabular")
        return float(np.abs(a - b).sum() / np.abs(a).sum())

    plain, limited = gap(), gap(band_limit_hz=7500)
    assert limited < 0.01 and limited < plain / 10, (plain, limited)


def test_band_limit_keys_the_cache(setup: dict) -> None:
    ds = setup["ds"]
    plain = get_feature_set("librosa_30s", seconds=6)
    limited = get_feature_set("librosa_30s", seconds=6, band_limit_hz=7500)
    assert plain.cache_key(ds, "tabular") != limited.cache_key(ds, "tabular")


@pytest.mark.parametrize("value", ["8k", True, 0, 500, 11025, 20000])
def test_bad_band_limits_are_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="band_limit_hz must be a frequency in Hz"):
        get_feature_set("librosa_30s", band_limit_hz=value)


def test_the_band_limit_is_checked_against_the_sets_own_rate() -> None:
    assert get_feature_set("waveform", sample_rate=32000, band_limit_hz=15000).band_limit_hz
    with pytest.raises(ConfigError, match="sample_rate / 2 = 8000"):
        get_feature_set("waveform", sample_rate=16000, band_limit_hz=8000)


def test_the_config_loader_takes_and_validates_band_limit_hz(make_config) -> None:
    def mine(feature_params: dict) -> object:
        return make_config(name="mine", extends="smoke", feature_params=feature_params)

    limited = {"librosa_3s": {"band_limit_hz": 8000}}
    assert mine(limited).feature_params == limited  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"feature_params\.librosa_30s: .*band_limit_hz"):
        mine({"librosa_30s": {"band_limit_hz": "1e5"}})  # as YAML reads `1e5`: a string
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) band_limit_hz"):
        mine({"spectrogram_img": {"band_limit_hz": 8000}})
