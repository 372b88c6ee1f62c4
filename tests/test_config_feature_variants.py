"""``feature_variants``: a registered feature set under another name with other parameters, so
two settings of one set run side by side on the same folds. Checked when the config loads
(unknown base, unknown or bad parameters, a name taken, a variant of a variant), resolved to
the set and parameters it runs with, left out of the digest of configs that do not use it, and
run through the plan: a variant with its base's parameters gives its base's rows under its own
name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import run_local

from benchmark.config import config_from_dict, load_config
from benchmark.errors import ConfigError
from benchmark.execution.plan import feature_set_of

MAX_POOL = {"embedding_musicnn_max_pool": {"of": "embedding_musicnn", "layer": "max_pool"}}


def _cfg(**raw):
    base = {
        "name": "v",
        "feature_sets": ["csv_30s"],
        "families": ["logreg"],
        "protocols": {"artist_kfold": {"n_folds": 3}},
        "baseline": {"feature_set": "csv_30s", "family": "logreg"},
    }
    return config_from_dict({**base, **raw}, source="mine.yaml")


def test_a_variant_resolves_to_its_base_with_its_parameters():
    cfg = _cfg(
        feature_sets=["embedding_musicnn", "embedding_musicnn_max_pool"],
        feature_variants=MAX_POOL,
        feature_params={"embedding_musicnn_max_pool": {"seconds": 10}},
    )
    assert cfg.feature_class("embedding_musicnn_max_pool").name == "embedding_musicnn"
    assert cfg.feature_of("embedding_musicnn_max_pool") == "embedding_musicnn"
    assert cfg.feature_of("embedding_musicnn") is None
    # feature_params add to (and win over) the variant's own; the base's are not inherited
    assert cfg.feature_params_of("embedding_musicnn_max_pool") == {
        "layer": "max_pool",
        "seconds": 10,
    }
    assert cfg.feature_params_of("embedding_musicnn") == {}
    fset = feature_set_of(cfg, "embedding_musicnn_max_pool")
    assert fset.name == "embedding_musicnn_max_pool"  # what results and messages say
    assert fset.registered_name() == "embedding_musicnn"  # what computes and caches it
    assert fset.params == {"layer": "max_pool", "seconds": 10}
    assert fset.feature_names("tabular")[0] == "musicnn_max_pool_000_mean"
    base = feature_set_of(cfg, "embedding_musicnn")
    assert base.name == "embedding_musicnn" and base.params == {}
    # the config round-trips through its stored form (run.json)
    assert config_from_dict(cfg.to_dict(), source="run.json") == cfg


def test_variants_change_the_digest_only_where_used():
    plain = _cfg()
    assert _cfg(feature_variants={}).digest() == plain.digest()
    assert _cfg(feature_variants=None).digest() == plain.digest()
    used = _cfg(feature_variants=MAX_POOL, feature_sets=["embedding_musicnn_max_pool"])
    assert used.digest() != plain.digest()
    threads = {
        "embedding_musicnn_max_pool": {**MAX_POOL["embedding_musicnn_max_pool"], "n_jobs": 2}
    }
    same = _cfg(feature_variants=threads, feature_sets=["embedding_musicnn_max_pool"])
    assert same.digest() == used.digest()  # extraction processes change no value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"feature_variants": {"mnn_wide": {"of": "embedding_musicnm", "layer": "max_pool"}}},
            r"mine\.yaml: feature_variants\.mnn_wide: of: unknown feature set 'embedding_musicnm'"
            r"; known: .*embedding_musicnn",
        ),
        (
            {"feature_variants": {"mnn_wide": {"layer": "max_pool"}}},
            r"feature_variants\.mnn_wide must be a mapping with 'of'",
        ),
        (
            {"feature_variants": {"mnn_wide": {"of": "embedding_musicnn", "layr": "max_pool"}}},
            r"feature_variants\.mnn_wide: unknown parameter\(s\) layr for feature set "
            r"'embedding_musicnn' \(variant 'mnn_wide'\); known: .*layer",
        ),
        (
            {"feature_variants": {"mnn_wide": {"of": "embedding_musicnn", "layer": "logits"}}},
            r"feature_variants\.mnn_wide: .*layer must be one of penultimate, max_pool",
        ),
        (
            {"feature_variants": {"librosa_3s": {"of": "librosa_30s"}}},
            r"feature_variants\.librosa_3s: 'librosa_3s' is already a registered feature set",
        ),
        (
            {
                "feature_variants": {
                    "a_wide": {"of": "embedding_musicnn", "layer": "max_pool"},
                    "b_wide": {"of": "a_wide"},
                }
            },
            r"feature_variants\.b_wide: of: unknown feature set 'a_wide' \(a variant is made of a "
            r"registered set",
        ),
        (
            {"feature_variants": {"Wide Pool": {"of": "embedding_musicnn"}}},
            r"feature_variants\.Wide Pool: a variant's name must be lower-case",
        ),
        (
            {"feature_variants": ["embedding_musicnn"]},
            r"feature_variants must map new names to \{of: <feature set>, <params>\}",
        ),
        (
            {
                "feature_variants": MAX_POOL,
                "feature_params": {"embedding_musicnn_max_pool": {"n_mels": 64}},
            },
            r"feature_params\.embedding_musicnn_max_pool \(with feature_variants\."
            r"embedding_musicnn_max_pool\): unknown parameter\(s\) n_mels",
        ),
        (
            {"feature_sets": ["embedding_musicnn_max_pool"]},
            r"unknown feature set 'embedding_musicnn_max_pool'; known: ",
        ),
    ],
    ids=[
        "unknown-base",
        "no-of",
        "unknown-param",
        "bad-value",
        "name-taken",
        "variant-of-variant",
        "bad-name",
        "not-a-mapping",
        "feature-params-of-variant",
        "undeclared",
    ],
)
def test_a_wrong_variant_is_refused_when_the_config_loads(raw, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        _cfg(**raw)
    assert "\n" not in str(info.value)


def test_a_variant_in_a_yaml_config_and_on_the_command_line(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nextends: smoke\nfeature_variants:\n"
        "  embedding_musicnn_max_pool: {of: embedding_musicnn, layer: max_pool}\n"
        "feature_sets: [csv_30s, embedding_musicnn_max_pool]\n"
    )
    cfg = load_config(str(path))
    assert cfg.feature_sets == ("csv_30s", "embedding_musicnn_max_pool")
    # --features picks it like any set (overrides are validated with the variants)
    assert cfg.with_overrides(feature_sets="embedding_musicnn_max_pool").feature_sets == (
        "embedding_musicnn_max_pool",
    )
    with pytest.raises(ConfigError, match="unknown feature set 'wide'"):
        cfg.with_overrides(feature_sets="wide")


def test_a_variant_runs_beside_its_base_on_the_same_folds(fake_gtzan: Path, tmp_path: Path):
    """Untuned (n_trials 0: each family's defaults), a variant with its base's parameters gives
    its base's scores fold for fold, under its own name in every results table."""
    cfg = _cfg(
        feature_sets=["csv_30s", "csv_again"],
        feature_variants={"csv_again": {"of": "csv_30s"}},
        n_trials=0,
        inner_folds=2,
        ensembles=False,
    )
    run = run_local(cfg, fake_gtzan, tmp_path)
    res = run.results
    assert set(res["feature_set"]) == {"csv_30s", "csv_again"}
    assert (res["status"] == "done").all()
    a = res[res["feature_set"] == "csv_30s"].sort_values("fold")
    b = res[res["feature_set"] == "csv_again"].sort_values("fold")
    np.testing.assert_array_equal(a["accuracy"].to_numpy(), b["accuracy"].to_numpy())
    pred = run.predictions
    assert set(pred["feature_set"]) >= {"csv_again"}
    # the cache holds the base's matrix once
    assert len(list((tmp_path / "cache").glob("csv_30s-tabular-*.npz"))) == 1


def test_an_ensemble_member_on_a_variant_is_computed_as_its_base():
    """``model.json`` of an exported ensemble lists a variant member with ``feature_of``:
    predict computes it as its base with the member's parameters, under the member's name, and
    a variant with its base's parameters shares the base's extraction."""
    from benchmark.ensembles import EnsembleMember
    from benchmark.inference.model_inputs import model_extractors
    from benchmark.inference.pipeline import PredictPlan
    from benchmark.inference.saved_model import SavedModel

    members = [
        EnsembleMember("embedding_musicnn", "logreg", {}, "tabular", {}, 0.5, None),
        EnsembleMember(
            "mnn_wide", "logreg", {"layer": "max_pool"}, "tabular", {}, 0.3, None,
            feature_of="embedding_musicnn",
        ),
        EnsembleMember(
            "mnn_same", "lda", {}, "tabular", {}, 0.2, None, feature_of="embedding_musicnn"
        ),
    ]  # fmt: skip
    listed = [m.describe() for m in members]
    assert "feature_of" not in listed[0] and listed[1]["feature_of"] == "embedding_musicnn"
    meta = {"kind": "ensemble", "feature_set": "ensemble", "classes": ["a", "b"]}
    model = SavedModel(Path(), None, {**meta, "members": listed})
    fsets = [fset for fset, _ in model_extractors(model)]
    assert [f.name for f in fsets] == ["embedding_musicnn", "mnn_wide", "mnn_same"]
    assert {f.registered_name() for f in fsets} == {"embedding_musicnn"}
    assert fsets[1].params == {"layer": "max_pool"} and fsets[1].layer == "max_pool"
    plan = PredictPlan.of(model)
    assert len(plan.specs) == 2 and plan.input_spec == (0, 1, 0)  # mnn_same: the base's rows
    assert {s.name for s in plan.specs} == {"embedding_musicnn"}
