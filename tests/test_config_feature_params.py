"""Unknown ``feature_params`` keys are refused like other unknown config keys (issue 17): a typo
would otherwise run the set with its default while the config says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.config import config_from_dict, load_config
from benchmark.errors import ConfigError


def _load(tmp_path: Path, body: str):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nextends: smoke\n" + body)
    return load_config(str(path))


def test_the_issue_reproduction_is_refused_naming_set_key_and_known_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "feature_params: {csv_30s: {foo: 1}}\n")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "mine.yaml") in message
    assert "feature_params.csv_30s: unknown parameter(s) foo" in message
    assert "known: none: it takes no parameters" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            "{logmel: {n_mel: 64}}",
            r"feature_params\.logmel: unknown parameter\(s\) n_mel .*known: ",
        ),
        ("{librosa_3s: {segment: 3}}", r"unknown parameter\(s\) segment .*segment_seconds"),
        ("{spectrogram_img: {hieght: 64}}", r"unknown parameter\(s\) hieght .*height"),
    ],
)
def test_a_typo_lists_the_parameters_the_set_takes(
    tmp_path: Path, params: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        _load(tmp_path, f"feature_params: {params}\n")


def test_known_parameters_of_audio_sets_include_the_common_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "feature_params: {logmel: {n_mel: 64}}\n")
    known = str(info.value).split("known: ")[1]
    for name in ("n_mels", "n_fft", "hop_length", "sample_rate", "seconds", "n_jobs"):
        assert name in known


def test_a_bad_value_is_refused_when_the_config_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"feature_params\.logmel: .*n_mels"):
        _load(tmp_path, "feature_params: {logmel: {n_mels: -3}}\n")


def test_an_unknown_feature_set_in_feature_params_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "feature_params: {csv30s: {}}\n")
    message = str(info.value)
    assert "feature_params names unknown feature set 'csv30s'; known: " in message
    assert "csv_30s" in message and "logmel" in message


def test_a_set_not_in_feature_sets_is_still_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"feature_params\.waveform: unknown parameter\(s\) x"):
        _load(tmp_path, "feature_sets: [csv_30s]\nfeature_params: {waveform: {x: 1}}\n")


def test_valid_and_empty_parameters_still_load(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        "feature_params:\n  logmel: {n_mels: 32, bands: 8, n_jobs: 1}\n  csv_30s:\n"
        "  spectrogram_img: {height: 64}\n",
    )
    assert cfg.feature_params == {
        "logmel": {"n_mels": 32, "bands": 8, "n_jobs": 1},
        "csv_30s": {},
        "spectrogram_img": {"height": 64},
    }
    assert _load(tmp_path, "feature_params:\n").feature_params == {}


def test_parameters_that_are_not_a_mapping_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"feature_params\.logmel must map parameter names"):
        _load(tmp_path, "feature_params: {logmel: [n_mels, 64]}\n")
    with pytest.raises(ConfigError, match="feature_params must map feature sets to parameters"):
        _load(tmp_path, "feature_params: [logmel]\n")


def test_command_line_overrides_and_run_json_configs_are_checked_too() -> None:
    cfg = load_config("smoke")
    with pytest.raises(ConfigError, match=r"command line: feature_params\.csv_3s: unknown"):
        cfg.with_overrides(feature_params={"csv_3s": {"foo": 1}})
    raw = {**cfg.to_dict(), "feature_params": {"csv_30s": {"foo": 1}}}
    with pytest.raises(ConfigError, match=r"run\.json: feature_params\.csv_30s: unknown"):
        config_from_dict(raw, source="run.json")
