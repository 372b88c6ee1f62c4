"""Family variants (config ``family_variants``) and the reduction in search spaces.

A plain family's space is exactly its file's (no reduction), so configs that name no variant
run as before; a variant validates at load with the config, the variant and the key named, and
runs through run → leaderboard → export → predict under its own name.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import UNIT_GENRES, write_genre_clip, write_genre_folder

from benchmark.cli import main
from benchmark.config import config_from_dict, load_config
from benchmark.errors import ConfigError
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.inference.saved_model import load_model
from benchmark.models import all_families
from benchmark.tuning.search_space import load_search_space

#: the families whose search spaces declare a reduction range (issue 38)
REDUCING = ("logreg", "svm_linear", "svm_poly", "svm_rbf", "svm_sigmoid", "knn", "lda", "qda")

VARIANTS = {
    "svm_rbf_pca": {"of": "svm_rbf", "reduction": "tuned"},
    "svm_rbf_pca128": {"of": "svm_rbf", "fixed": {"pca_components": 128}},
}


def _config(**over: object):
    raw = {"name": "v", "families": ["logreg"], "family_variants": VARIANTS, **over}
    return config_from_dict(raw, source="test")


def test_the_reduction_is_declared_for_the_families_where_it_can_help() -> None:
    declared = {name for name in all_families() if load_search_space(name).reduction}
    assert declared == set(REDUCING)


@pytest.mark.parametrize("family", sorted(all_families()))
def test_a_plain_family_never_samples_a_reduction(family: str) -> None:
    space = load_search_space(family)
    assert "pca_components" not in space.distributions
    assert set(space.to_dict()) == {"family", "fixed", "defaults", "params"}
    assert "pca_components" not in space.defaults_for_trial()


def test_configs_without_variants_keep_their_digest_and_spaces() -> None:
    for name in ("smoke", "quick"):
        assert load_config(name).family_variants == {}
    # full and embeddings add variants beside the plain families, whose spaces stay as they were
    for name in ("smoke", "quick", "full", "embeddings"):
        cfg = load_config(name)
        for family in cfg.family_names():
            if family not in cfg.family_variants:
                assert cfg.search_space(family) == load_search_space(family)
    smoke = load_config("smoke")
    with_empty = config_from_dict({**smoke.to_dict(), "family_variants": {}}, source="t")
    assert with_empty.digest() == smoke.digest()
    with_one = config_from_dict({**smoke.to_dict(), "family_variants": VARIANTS}, source="t")
    assert with_one.digest() != smoke.digest()


def test_a_tuned_reduction_adds_the_declared_range_and_a_fixed_one_pins_it() -> None:
    cfg = _config()
    tuned = cfg.search_space("svm_rbf_pca")
    base = load_search_space("svm_rbf")
    assert tuned.of == "svm_rbf" and tuned.family == "svm_rbf_pca"
    assert tuned.distributions == {
        **base.distributions,
        **{"pca_components": base.reduction[0].distribution},
    }
    assert tuned.defaults_for_trial() == {**base.defaults_for_trial(), "pca_components": 32}
    pinned = cfg.search_space("svm_rbf_pca128")
    assert pinned.distributions["pca_components"].choices == (128,)
    assert pinned.defaults_for_trial()["pca_components"] == 128
    assert set(pinned.distributions) - {"pca_components"} == set(base.distributions)
    assert cfg.trials_for("svm_rbf_pca") == cfg.n_trials
    assert cfg.model_family("svm_rbf_pca128").input_kind == "tabular"


def test_a_pinned_parent_drops_the_params_it_switches_off() -> None:
    cfg = _config(family_variants={"rbf_scale": {"of": "svm_rbf", "fixed": {"gamma": "scale"}}})
    space = cfg.search_space("rbf_scale")
    assert set(space.distributions) == {"C", "gamma"}
    assert space.distributions["gamma"].choices == ("scale",)


def test_the_recipe_config_names_the_max_pool_layer_and_the_pca128_svm() -> None:
    cfg = load_config("musicnn_recipe")
    assert cfg.feature_params["embedding_musicnn"] == {"layer": "max_pool"}
    assert cfg.tracks == "with_audio" and cfg.protocols == {"artist_kfold": {"n_folds": 5}}
    assert cfg.family_names() == ["logreg", "svm_rbf", "svm_rbf_pca", "svm_rbf_pca128"]
    recipe = cfg.search_space("svm_rbf_pca128")
    assert recipe.of == "svm_rbf" and recipe.defaults_for_trial()["pca_components"] == 128
    assert {"C", "gamma"} <= set(recipe.distributions)  # the SVM's own params stay tuned


def test_families_all_runs_the_variants_too() -> None:
    cfg = _config(families="all")
    assert cfg.family_names() == [*all_families(), *VARIANTS]


@pytest.mark.parametrize(
    ("variants", "words"),
    [
        ({"x": {"of": "nope"}}, r"family_variants\.x\.of: must name a registered family.*svm_rbf"),
        ({"x": {"of": ["svm_rbf"]}}, r"x\.of: must name a registered family, got \['svm_rbf'\]"),
        ({"x": {"of": "svm_rbf_pca"}}, r"x\.of: must name a registered family"),  # no chains
        ({"x": {"of": "random_forest", "reduction": "tuned"}}, r"declares no reduction range.*qda"),
        ({"x": {"of": "svm_rbf", "fixed": {"degree": 3}}}, r"fixed\.degree: 'svm_rbf' has no"),
        ({"x": {"of": "svm_rbf", "fixed": {"C": 1.0e9}}}, r"fixed\.C: 1000000000\.0 lies outside"),
        ({"x": {"of": "svm_rbf", "fixed": {"pca_components": 0}}}, r"integer >= 1"),
        (
            {"x": {"of": "svm_rbf", "reduction": "tuned", "fixed": {"pca_components": 8}}},
            "contradict",
        ),
        ({"x": {"of": "svm_rbf", "reduction": "pca"}}, r"reduction: must be one of none, tuned"),
        ({"x": {"of": "svm_rbf", "kernel": "rbf"}}, r"unknown key\(s\) kernel"),
        ({"logreg": {"of": "svm_rbf"}}, "is a registered family"),
        ({"Big": {"of": "svm_rbf"}}, "lower case"),
        ({"x": "svm_rbf"}, "must be a mapping"),
        ([], "family_variants must map names"),
    ],
)
def test_a_bad_variant_fails_at_load_naming_the_variant_and_key(
    variants: object, words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        _config(family_variants=variants)


def test_an_unknown_family_lists_the_variants_among_the_known() -> None:
    with pytest.raises(ConfigError, match=r"unknown family 'svm_rbf_pca64'.*svm_rbf_pca128"):
        _config(families=["svm_rbf_pca64"])
    cfg = _config()
    with pytest.raises(ConfigError, match="unknown config key|unknown family"):
        cfg.with_overrides(families=["nope"])
    assert cfg.with_overrides(families=["svm_rbf_pca"]).family_names() == ["svm_rbf_pca"]


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run on generated audio: librosa_30s with a plain family, a tuned-reduction variant and
    the PCA-128 recipe (clipped to the inner folds' rows), the baseline itself a variant."""
    tmp = tmp_path_factory.mktemp("variants")
    data = write_genre_folder(tmp / "gtzan", UNIT_GENRES, n_per_genre=6, seconds=3.0)
    cfg = config_from_dict(
        {
            "name": "variants",
            "seed": 3,
            "feature_sets": ["librosa_30s"],
            "feature_params": {"librosa_30s": {"seconds": 3}},
            "families": ["logreg", "logreg_pca", "svm_rbf_pca128"],
            "family_variants": {
                "logreg_pca": {"of": "logreg", "reduction": "tuned"},
                "svm_rbf_pca128": VARIANTS["svm_rbf_pca128"],
            },
            "protocols": {"artist_kfold": {"n_folds": 3}},
            "inner_folds": 2,
            "n_trials": 2,
            "ensembles": False,
            "baseline": {"feature_set": "librosa_30s", "family": "svm_rbf_pca128"},
        },
        source="test",
    )
    result = plan_and_run(cfg, RunOptions(data_dir=str(data), results_root=tmp, track=False))
    return {"tmp": tmp, "data": data, "dir": result.results_dir}


def test_variants_run_under_their_own_names(variant_run: dict) -> None:
    results = pd.read_parquet(variant_run["dir"] / "results.parquet")
    assert set(results["family"]) == {"logreg", "logreg_pca", "svm_rbf_pca128"}
    assert (results["status"] == "done").all(), results[["family", "message"]]
    params = results.set_index("family")["params"]
    assert all('"pca_components": 128' in p for p in params.loc[["svm_rbf_pca128"]])
    assert all("pca_components" in p for p in params.loc[["logreg_pca"]])
    assert not any("pca_components" in p for p in params.loc[["logreg"]])


def test_variants_reach_the_leaderboard_export_and_predict(variant_run: dict) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["report", str(variant_run["dir"])])
    assert res.exit_code == 0, res.output
    page = (variant_run["dir"] / "leaderboard.html").read_text()
    assert "svm_rbf_pca128" in page and "logreg_pca" in page

    args = ["export", str(variant_run["dir"]), "--data-dir", str(variant_run["data"])]
    res = runner.invoke(main, [*args, "--family", "svm_rbf_pca128", "--no-register"])
    assert res.exit_code == 0, res.output
    folder = variant_run["dir"] / "final_model"
    meta = json.loads((folder / "model.json").read_text())
    assert meta["pair"]["family"] == "svm_rbf_pca128"
    assert meta["params"]["pca_components"] == 128
    reduce = load_model(folder).estimator.named_steps["reduce"]
    assert reduce.n_components_ == min(24, reduce.n_features_in_)  # clipped: 24 tracks

    song = write_genre_clip(variant_run["tmp"] / "songs" / "jazz.wav", "jazz", 7, seconds=3.0)
    res = runner.invoke(main, ["predict", str(song), "--model", str(folder), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["pair"]["family"] == "svm_rbf_pca128"
    assert doc["predictions"][0]["genres"][0]["genre"] == "jazz"
