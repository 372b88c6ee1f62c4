"""Benchmark configs (benchmark/config.py): loading by path, extends, validation, overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from benchmark.config import DEFAULTS, BenchmarkConfig, config_from_dict, load_config
from benchmark.errors import ConfigError
from benchmark.paths import configs_dir


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def load(folder: Path, name: str, text: str) -> BenchmarkConfig:
    return load_config(str(write(folder, name, text)))


# --- loading ---------------------------------------------------------------------------------
def test_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "tiny", "families: [logreg]\n")
    assert cfg.name == "tiny"  # from the file name
    assert cfg.families == ("logreg",)
    assert cfg.seed == DEFAULTS["seed"] == 0
    assert cfg.feature_sets == ("csv_30s",)
    assert cfg.protocols == DEFAULTS["protocols"]
    assert cfg.n_trials == DEFAULTS["n_trials"] and cfg.inner_folds == DEFAULTS["inner_folds"]
    assert cfg.baseline == {"feature_set": "csv_30s", "family": "seed_mlp"}
    assert cfg.family_names() == ["logreg"]


def test_a_config_with_nothing_set_gets_every_documented_default() -> None:
    # DEFAULTS is the one list of defaults: the loader and the dataclass both read it
    assert {f.name for f in dataclasses.fields(BenchmarkConfig)} == set(DEFAULTS)
    loaded = config_from_dict({"name": "bare"}, source="test")
    built = BenchmarkConfig(name="bare")
    for key, default in DEFAULTS.items():
        if key == "name":
            continue
        expected = tuple(default) if isinstance(default, list) else default
        assert getattr(loaded, key) == expected, key
        assert getattr(built, key) == expected, key
    assert built == loaded
    assert built.protocols == {"artist_kfold": {"n_folds": 10}, "fault_filtered": {}}
    assert built.baseline == {"feature_set": "csv_30s", "family": "seed_mlp"}
    # each config gets its own copy: changing one config's mapping changes no default
    built.protocols["artist_kfold"]["n_folds"] = 3
    assert DEFAULTS["protocols"]["artist_kfold"] == {"n_folds": 10}
    assert BenchmarkConfig(name="other").protocols["artist_kfold"] == {"n_folds": 10}


def test_full_config_by_path(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "mine",
        """
name: my-bench
description: testing
seed: 42
feature_sets: [csv_30s, csv_3s]
feature_params: {spectrogram_img: {height: 64}}
families: [logreg, knn]
protocols:
  stratified_kfold: {n_folds: 5}
  fault_filtered:
inner_folds: 4
n_trials: 7
timeout_s: 12.5
n_jobs: 3
baseline: {feature_set: csv_30s, family: logreg}
""",
    )
    assert cfg.name == "my-bench" and cfg.seed == 42
    assert cfg.feature_sets == ("csv_30s", "csv_3s")
    assert cfg.protocols == {"stratified_kfold": {"n_folds": 5}, "fault_filtered": {}}
    assert (cfg.inner_folds, cfg.n_trials, cfg.timeout_s, cfg.n_jobs) == (4, 7, 12.5, 3)
    assert cfg.feature_params == {"spectrogram_img": {"height": 64}}
    d = cfg.to_dict()
    assert d["feature_sets"] == ["csv_30s", "csv_3s"] and d["families"] == ["logreg", "knn"]
    assert set(d) == set(DEFAULTS)


def test_all_families_and_short_forms(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, "short", "feature_sets: csv_3s\nprotocols: [artist_kfold, fault_filtered]\n"
    )
    assert cfg.feature_sets == ("csv_3s",)
    assert cfg.protocols == {"artist_kfold": {}, "fault_filtered": {}}
    assert cfg.families == "all"
    assert "logreg" in cfg.family_names() and "seed_mlp" in cfg.family_names()


@pytest.mark.parametrize("name", sorted(p.stem for p in configs_dir().glob("*.yaml")))
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.family_names()


def test_unknown_config_name_or_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown config 'nosuch'; known: .*quick"):
        load_config("nosuch")
    with pytest.raises(ConfigError, match="unknown config"):
        load_config(str(tmp_path / "missing.yaml"))


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML"):
        load(tmp_path, "bad", "families: [logreg\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(tmp_path, "list", "- logreg\n- knn\n")


# --- extends ---------------------------------------------------------------------------------
def test_extends_a_sibling_file(tmp_path: Path) -> None:
    write(tmp_path, "base", "name: base\nseed: 3\nfamilies: [logreg]\nn_trials: 9\n")
    child = load(tmp_path, "child", "extends: base\nn_trials: 2\n")
    assert child.name == "child"  # the parent's name is not inherited
    assert child.seed == 3 and child.families == ("logreg",)
    assert child.n_trials == 2
    grandchild = load(tmp_path, "grand", "extends: child.yaml\nseed: 4\n")
    assert (grandchild.seed, grandchild.n_trials, grandchild.name) == (4, 2, "grand")


def test_extends_a_shipped_preset_from_elsewhere(tmp_path: Path) -> None:
    quick = load_config("quick")
    mine = load(tmp_path, "mine", "extends: quick\nseed: 11\n")
    assert mine.seed == 11 and mine.name == "mine"
    assert mine.protocols == quick.protocols and mine.n_trials == quick.n_trials
    assert mine.feature_sets == quick.feature_sets


def test_extends_replaces_mappings_whole(tmp_path: Path) -> None:
    write(tmp_path, "base", "families: [logreg]\nprotocols: {artist_kfold: {n_folds: 5}}\n")
    child = load(tmp_path, "child", "extends: base\nprotocols: {fault_filtered: {}}\n")
    assert child.protocols == {"fault_filtered": {}}


def test_circular_extends(tmp_path: Path) -> None:
    write(tmp_path, "a", "extends: b\nfamilies: [logreg]\n")
    write(tmp_path, "b", "extends: a\n")
    with pytest.raises(ConfigError, match="circular extends"):
        load_config(str(tmp_path / "a.yaml"))
    with pytest.raises(ConfigError, match="circular extends"):
        load(tmp_path, "self", "extends: self.yaml\n")
    write(tmp_path, "c", "extends: d.yaml\n")
    write(tmp_path, "d", "extends: c\n")
    with pytest.raises(ConfigError, match=r"circular extends \(c -> d -> c\)"):
        load_config(str(tmp_path / "c.yaml"))


def test_extends_unknown_parent(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config 'ghost'"):
        load(tmp_path, "orphan", "extends: ghost\n")


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("n_trial: 5\n", r"bad.yaml: unknown key\(s\) n_trial; known: name, description"),
        ("families: [logreg, xgboost]\n", "unknown family 'xgboost'; known: "),
        ("families: everything\n", "families must be a list or 'all'"),
        ("feature_sets: [csv_30s, mfcc]\n", "unknown feature set 'mfcc'"),
        ("feature_params: {mfcc: {n: 3}}\n", "feature_params names unknown feature set 'mfcc'"),
        ("protocols: {random_split: {}}\n", "unknown protocol 'random_split'"),
        (
            "protocols: {artist_kfold: {folds: 3}}\n",
            r"protocols.artist_kfold: unknown parameter\(s\) folds; takes n_folds",
        ),
        ("protocols: {fault_filtered: {n_folds: 3}}\n", "takes no parameters"),
        ("protocols: {artist_kfold: {n_folds: ten}}\n", "n_folds must be int"),
        ("protocols: {}\n", "no protocols"),
        ("protocols: 3\n", "protocols must map names to options"),
        ("n_trials: -2\n", "n_trials must be an integer >= 0, got -2"),
        ("n_trials: many\n", "n_trials must be an integer >= 0, got 'many'"),
        ("n_trials: 2.5\n", "n_trials must be an integer >= 0, got 2.5"),
        ("n_trials: true\n", "n_trials must be an integer >= 0, got True"),
        ("inner_folds: 1\n", "inner_folds must be an integer >= 2"),
        ("n_jobs: 0\n", "n_jobs must be an integer >= 1"),
        ("seed: -1\n", "seed must be an integer >= 0"),
        ("seed: abc\n", "seed must be an integer >= 0"),
        ("search_seed: -3\n", "search_seed must be an integer >= 0 or null, got -3"),
        ("trials_per_param: 0\n", "trials_per_param must be an integer >= 1 or null, got 0"),
        ("search_seed: one\n", "search_seed must be an integer >= 0 or null, got 'one'"),
        ("timeout_s: 0\n", "timeout_s must be a positive number"),
        ("timeout_s: soon\n", "timeout_s must be a positive number"),
        ("baseline: {family: logreg}\n", "baseline needs feature_set and family"),
    ],
)
def test_invalid_values_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load(tmp_path, "bad", text)
    assert "bad.yaml" in str(err.value)


def test_unknown_key_inherited_from_a_parent(tmp_path: Path) -> None:
    write(tmp_path, "base", "familes: [logreg]\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) familes"):
        load(tmp_path, "child", "extends: base\n")


# --- overrides and digest ----------------------------------------------------------------------
@pytest.fixture
def cfg(tmp_path: Path) -> BenchmarkConfig:
    return load(
        tmp_path,
        "bench",
        "families: [logreg, knn]\nprotocols: {artist_kfold: {n_folds: 5}, fault_filtered: {}}\n",
    )


def test_with_overrides(cfg: BenchmarkConfig) -> None:
    new = cfg.with_overrides(n_trials=5, seed=None, families=["knn"])
    assert new.n_trials == 5 and new.families == ("knn",)
    assert new.seed == cfg.seed  # None means "not given"
    assert cfg.n_trials == DEFAULTS["n_trials"] and cfg.families == ("logreg", "knn")
    only = cfg.with_overrides(protocols=["artist_kfold", "stratified_kfold"])
    # a list of names keeps each protocol's options from the config
    assert only.protocols == {"artist_kfold": {"n_folds": 5}, "stratified_kfold": {}}
    assert cfg.with_overrides(feature_sets="csv_3s").feature_sets == ("csv_3s",)
    assert cfg.with_overrides(families="knn").families == ("knn",)
    assert cfg.with_overrides(families="all").families == "all"
    assert cfg.with_overrides() == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_trials": -1}, "command line: n_trials must be an integer >= 0"),
        ({"families": ["nope"]}, "command line: unknown family 'nope'"),
        ({"protocols": ["nope"]}, "command line: unknown protocol 'nope'"),
        ({"feature_sets": ["nope"]}, "command line: unknown feature set 'nope'"),
        ({"trials": 3}, "command line: unknown config key"),
    ],
)
def test_with_overrides_validates(cfg: BenchmarkConfig, overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfg.with_overrides(**overrides)


def test_digest(cfg: BenchmarkConfig, tmp_path: Path) -> None:
    d = cfg.digest()
    assert len(d) == 12 and d == cfg.digest()
    # reloading the same file, or the same content in another key order, gives the same digest
    again = load(
        tmp_path,
        "bench",
        "protocols: {fault_filtered: {}, artist_kfold: {n_folds: 5}}\nfamilies: [logreg, knn]\n",
    )
    assert again.digest() == d
    # not changed by what does not change results
    assert cfg.with_overrides(n_jobs=4).digest() == d
    assert cfg.with_overrides(description="other words").digest() == d
    logmel = {"n_mels": 64}
    with_params = cfg.with_overrides(feature_params={"logmel": logmel}).digest()
    assert with_params != d
    extraction = cfg.with_overrides(feature_params={"logmel": {**logmel, "n_jobs": 2}})
    assert extraction.digest() == with_params
    # changed by what does
    assert cfg.with_overrides(n_trials=3).digest() != d
    assert cfg.with_overrides(seed=1).digest() != d
    # a search seed is another search: other studies
    assert cfg.with_overrides(search_seed=1).digest() != d
    assert cfg.with_overrides(search_seed=1).digest() != cfg.with_overrides(search_seed=2).digest()
    assert cfg.with_overrides(protocols=["artist_kfold"]).digest() != d
    assert cfg.with_overrides(feature_sets=["csv_3s"]).digest() != d
    assert cfg.with_overrides(timeout_s=30).digest() != d
