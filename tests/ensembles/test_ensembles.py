"""The ensemble stage and the files it learns from: inner OOF predictions, trials, honesty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.config import load_config
from benchmark.ensembles import (
    ENSEMBLE_FEATURE_SET,
    EnsembleSettings,
    GreedySelection,
    Stacking,
    TopKVote,
    ensemble_outcomes,
    run_ensemble_stage,
)
from benchmark.errors import ConfigError
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions

#: three families on two feature sets, every ensemble method (``make_config(**ENS)``)
ENS = dict(
    name="ens",
    feature_sets=["csv_30s", "spectrogram_img"],
    families=["logreg", "lda", "knn"],
    protocols={"artist_kfold": {"n_folds": 3}, "fault_filtered": {}},
    ensembles={"methods": ["greedy", "stacking", "top_k"], "size": 10, "top_k": 3},
)


@pytest.fixture(scope="module")
def run(fake_gtzan: Path, tmp_path_factory: pytest.TempPathFactory, make_config):
    tmp = tmp_path_factory.mktemp("ens")
    cfg = make_config(**ENS)
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp / "results", track=False)
    return cfg, plan_and_run(cfg, opts)


def _read(result, name: str) -> pd.DataFrame:
    return pd.read_parquet(result.results_dir / name)


def test_inner_predictions_cover_exactly_the_outer_training_part(run) -> None:
    _, result = run
    inner = _read(result, "inner_predictions.parquet")
    splits = _read(result, "splits.parquet")
    pairs = result.results[result.results["feature_set"] != ENSEMBLE_FEATURE_SET]
    assert len(pairs) == 2 * 3 * 4 and set(pairs["status"]) == {"done"}
    preds = result.predictions
    for (fs, fam, proto, fold), g in inner.groupby(["feature_set", "family", "protocol", "fold"]):
        part = splits[(splits["protocol"] == proto) & (splits["fold"] == fold)]
        train = set(part.loc[part["part"] == "train", "track_id"])
        # the tracks the feature set has: those its pair scored over the k folds
        own = preds[
            (preds["feature_set"] == fs)
            & (preds["family"] == fam)
            & (preds["protocol"] == "artist_kfold")
        ]
        tracks = list(g["track_id"])
        assert len(tracks) == len(set(tracks)), "a training track predicted twice"
        # every training track the feature set has, and nothing else (no outer test track)
        assert set(tracks) == train & set(own["track_id"]), (fs, fam, proto, fold)
        assert g["inner_fold"].nunique() == 2
        assert np.allclose(g.filter(like="proba_").sum(axis=1), 1.0)
    # one set of inner predictions per done pair and fold
    assert inner.groupby(["feature_set", "family", "protocol", "fold"]).ngroups == len(pairs)


def test_inner_predictions_are_the_best_trials_inner_cv(run) -> None:
    """The stored inner OOF accuracy is the best trial's inner-CV objective (mean over inner
    folds), so the predictions are those of the best params, not of another refit."""
    _, result = run
    inner = _read(result, "inner_predictions.parquet")
    pairs = result.results[result.results["feature_set"] != ENSEMBLE_FEATURE_SET]
    for row in pairs.itertuples():
        g = inner[
            (inner["feature_set"] == row.feature_set)
            & (inner["family"] == row.family)
            & (inner["protocol"] == row.protocol)
            & (inner["fold"] == row.fold)
        ]
        per_fold = g.groupby("inner_fold")["correct"].mean().mean()
        if np.isfinite(row.inner_accuracy):
            assert per_fold == pytest.approx(row.inner_accuracy, abs=1e-12)


def test_trials_file_holds_every_counted_trial(run) -> None:
    _, result = run
    trials = _read(result, "trials.parquet")
    pairs = result.results[result.results["feature_set"] != ENSEMBLE_FEATURE_SET]
    finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    counts = finished.groupby(["feature_set", "family", "protocol", "fold"]).size()
    for row in pairs.itertuples():
        key = (row.feature_set, row.family, row.protocol, row.fold)
        assert counts.get(key, 0) == row.n_trials + row.n_pruned
    best = trials[trials["state"] == "COMPLETE"].groupby("study_name")["value"].max()
    for row in pairs.itertuples():
        assert best[row.study_name] == pytest.approx(row.inner_accuracy)
    assert all(isinstance(json.loads(p), dict) for p in trials["params"])


def test_ensemble_rows_are_ordinary_rows_with_members(run) -> None:
    _, result = run
    res = result.results
    ens = res[res["feature_set"] == ENSEMBLE_FEATURE_SET]
    assert sorted(set(ens["family"])) == ["greedy", "stacking", "top_k"]
    assert len(ens) == 3 * 4 and set(ens["status"]) == {"done"}
    for row in ens.itertuples():
        members = json.loads(row.members)
        assert members and sum(members.values()) == pytest.approx(1.0, abs=1e-5)
        assert all(" · " in m for m in members)
        if row.family == "top_k":
            assert len(members) == 3
        if row.family == "greedy":  # picks with replacement: multiples of 1/size
            assert all(abs(w * 10 - round(w * 10)) < 1e-6 for w in members.values())
    preds = result.predictions
    splits = _read(result, "splits.parquet")
    for row in ens.itertuples():
        p = preds[
            (preds["feature_set"] == ENSEMBLE_FEATURE_SET)
            & (preds["family"] == row.family)
            & (preds["protocol"] == row.protocol)
            & (preds["fold"] == row.fold)
        ]
        part = splits[(splits["protocol"] == row.protocol) & (splits["fold"] == row.fold)]
        assert set(p["track_id"]) == set(part.loc[part["part"] == "test", "track_id"])
        assert row.accuracy == pytest.approx(p["correct"].mean())
    # rerunning the stage on the same files keeps its stored rows, timings and all
    settings = EnsembleSettings(size=10, top_k=3)
    key_file = result.results_dir / "ensembles" / "key.json"
    stored_at = key_file.stat().st_mtime_ns
    again, _ = run_ensemble_stage(result.results_dir, settings)
    pd.testing.assert_frame_equal(again, res, check_dtype=False)
    assert key_file.stat().st_mtime_ns == stored_at
    # learning them again from scratch writes the same rows: the stage is deterministic
    key_file.unlink()
    fresh, _ = run_ensemble_stage(result.results_dir, settings)
    timings = ["fit_s", "predict_s"]
    pd.testing.assert_frame_equal(
        fresh.drop(columns=timings), res.drop(columns=timings), check_dtype=False
    )
    # other settings are other inputs: relearnt, not reused (then back, for the other tests)
    other, _ = run_ensemble_stage(result.results_dir, EnsembleSettings(size=10, top_k=2))
    top = other[(other["feature_set"] == ENSEMBLE_FEATURE_SET) & (other["family"] == "top_k")]
    assert all(len(json.loads(m)) == 2 for m in top["members"])
    back, _ = run_ensemble_stage(result.results_dir, settings)
    pd.testing.assert_frame_equal(
        back.drop(columns=timings), res.drop(columns=timings), check_dtype=False
    )


def test_the_outer_test_part_cannot_influence_members_or_weights(run) -> None:
    """Scramble everything the outer test part offers (labels, every member's probabilities):
    each method picks the same members with the same weights and meta-parameters."""
    _, result = run
    res = result.results[result.results["feature_set"] != ENSEMBLE_FEATURE_SET]
    preds = result.predictions[result.predictions["feature_set"] != ENSEMBLE_FEATURE_SET]
    inner = _read(result, "inner_predictions.parquet")
    settings = EnsembleSettings(size=10, top_k=3)
    rng = np.random.default_rng(0)
    scrambled = preds.copy()
    cols = [c for c in preds.columns if c.startswith("proba_")]
    noise = rng.dirichlet(np.ones(len(cols)), size=len(preds))
    scrambled[cols] = noise
    classes = [c.removeprefix("proba_") for c in cols]
    scrambled["y_true"] = rng.choice(classes, size=len(preds))
    original = ensemble_outcomes(res, preds, inner, settings)
    changed = ensemble_outcomes(res, scrambled, inner, settings)
    assert len(original) == len(changed) == 12
    moved = 0
    for a, b in zip(original, changed, strict=True):
        assert a.pair == b.pair and a.fold == b.fold
        assert a.members == b.members and a.params == b.params
        moved += not np.allclose(
            a.predictions.filter(like="proba_"), b.predictions.filter(like="proba_")
        )
    assert moved == len(original)  # the test part is what they predict, nothing more


def _stack(rng: np.random.Generator, y: np.ndarray, sharpness: list[float]) -> np.ndarray:
    """Members of decreasing quality: member i puts ``sharpness[i]`` extra mass on the truth."""
    n, k = len(y), 4
    out = []
    for s in sharpness:
        p = rng.dirichlet(np.ones(k), size=n)
        p[np.arange(n), y] += s
        out.append(p / p.sum(axis=1, keepdims=True))
    return np.stack(out)


def test_greedy_selection_weights_the_good_members() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=300)
    P = _stack(rng, y, [0.0, 2.0, 0.1])
    greedy = GreedySelection(size=20).fit(P, y, np.arange(300) % 3)
    w = greedy.weights()
    assert w.sum() == pytest.approx(1.0) and w[1] == w.max() and w[0] < w[1]
    assert np.allclose(w * 20, np.round(w * 20))
    proba = greedy.predict_proba(P)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_linear_methods_renormalise_over_the_members_present() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=50)
    P = _stack(rng, y, [1.0, 1.0])
    vote = TopKVote(k=2).fit(P, y, np.zeros(50))
    P_missing = P.copy()
    P_missing[1, :10] = np.nan  # the second member lacks the first 10 tracks
    proba = vote.predict_proba(P_missing)
    assert np.allclose(proba[:10], P[0, :10])
    assert np.allclose(proba[10:], P[:, 10:].mean(axis=0))


def test_stacking_chooses_its_regularisation_by_grouped_cv() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, size=240)
    P = _stack(rng, y, [1.5, 0.0, 0.0])
    stack = Stacking().fit(P, y, np.arange(240) % 3)
    assert stack.C_ in Stacking.GRID
    w = stack.weights()
    assert w.argmax() == 0 and w.sum() == pytest.approx(1.0)
    proba = stack.predict_proba(P)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.mean(proba.argmax(axis=1) == y) > np.mean(P[1].argmax(axis=1) == y)


def test_ensemble_settings_are_validated(make_config) -> None:
    with pytest.raises(ConfigError, match="unknown ensembles key"):
        EnsembleSettings.from_config({"sise": 3})
    with pytest.raises(ConfigError, match="unknown ensemble method 'bagging'"):
        EnsembleSettings.from_config({"methods": ["bagging"]})
    assert EnsembleSettings.from_config(False) is None
    with pytest.raises(ConfigError, match="ensembles.size"):
        make_config(**{**ENS, "ensembles": {**ENS["ensembles"], "size": 0}})
    # the ensembles change no pair's result: not part of the digest (studies are reused)
    a = load_config("quick")
    assert a.with_overrides(ensembles=False).digest() == a.digest()


def test_no_ensemble_writes_only_pairs(fake_gtzan: Path, tmp_path: Path, make_config) -> None:
    cfg = make_config(**{**ENS, "families": ["lda"]}).with_overrides(
        ensembles=False, feature_sets=["csv_30s"]
    )
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path / "r", track=False)
    result = plan_and_run(cfg, opts)
    assert ENSEMBLE_FEATURE_SET not in set(result.results["feature_set"])


def test_an_exported_ensemble_classifies_a_song(run, fake_gtzan: Path, tmp_path: Path) -> None:
    """Export the greedy ensemble (refit over all tracks, members computable from audio only)
    and classify a synthesized song with it: its probabilities are the members' combined."""
    from fake_gtzan import write_wav

    from benchmark.final_model.export import export_from_results
    from benchmark.inference.model_inputs import model_inputs
    from benchmark.inference.predict import predict_file
    from benchmark.inference.saved_model import load_model

    _, result = run
    folder = export_from_results(result.results_dir, family="greedy", feature_set="ensemble")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["kind"] == "ensemble" and meta["pair"]["family"] == "greedy"
    assert meta["selected_by"] == "artist_kfold"
    members = meta["members"]
    assert members and sum(m["weight"] for m in members) == pytest.approx(1.0, abs=1e-5)
    # Kaggle's PNGs cannot be made from a song here: such members are left out, and said so
    assert all(meta["left_out"].values())
    computable = {m["feature_set"] for m in members}
    assert computable and all(fs in ("csv_30s", "spectrogram_img") for fs in computable)
    model = load_model(folder)
    song = tmp_path / "song.wav"
    write_wav(song, 440.0, 3.0, np.random.default_rng(0))
    pred = predict_file(model, song)
    assert pred.proba.sum() == pytest.approx(1.0)
    # the same as combining each member's own prediction by hand
    own = []
    for i in model_inputs(model):
        p = np.zeros(len(meta["classes"]))
        rows = i.fset.clip_rows(_clip(song, i.fset), i.input_kind)
        p[i.estimator.classes_] = i.estimator.predict_proba(rows).mean(axis=0)
        own.append(p)
    manual = model.estimator.combine([p[None] for p in own])[0]
    assert np.allclose(pred.proba, manual)
    # genrebench evaluate scores the ensemble on a labelled folder through the same path: each
    # scored row is the file's own prediction, and the accuracy counts exactly those rows
    from helpers import write_genre_clip

    from benchmark.inference.song_evaluation import evaluate_songs, read_labelled

    classes = meta["classes"]
    folder_in = tmp_path / "labelled"
    for k, genre in enumerate(classes[:3]):
        write_genre_clip(folder_in / genre / "a.wav", genre, k, genres=classes, seconds=3.0)
    ev = evaluate_songs(model, read_labelled(folder_in), n_boot=50)
    assert ev.count("scored") == 3 and not ev.failed
    for row in ev.rows:
        own_top = predict_file(model, row["file"]).top(1)[0][0]
        assert row["predicted"] == own_top and row["class"] == Path(row["file"]).parent.name
    correct = sum(bool(r["correct"]) for r in ev.rows)
    assert ev.metrics.accuracy.value == pytest.approx(correct / 3)


def _clip(path: Path, fset):
    from benchmark.audio.decoding import load_clip

    return load_clip(path, fset.sample_rate, fset.seconds)
