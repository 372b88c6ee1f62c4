"""benchmarks/embedding_comparison.py's reference mode on generated results tables: the numbers
it prints are the leaderboard's paired tests on the right tracks, Holm over what it prints."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from benchmark.results import results_frame, write_table
from benchmark.stats import holm, mcnemar_exact

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "embedding_comparison.py"

EMB = ("embedding_musicnn", "logreg")
LIB = ("librosa_30s", "logreg")
PATCH = ("embedding_musicnn_3s", "svm_rbf")
BROKEN = ("csv_30s", "lightgbm")  # one fold failed: no comparison
FOLDS, PER_FOLD = 5, 20
# tracks right per fold; a pair is right on the fold positions [offset, offset + n)
RIGHT = {EMB: (0, [12, 13, 11, 12, 12]), LIB: (3, [8, 9, 7, 8, 8]), PATCH: (1, [10, 12, 9, 11, 10])}
RIGHT[BROKEN] = (0, [9, 9, 9, 9, 9])


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedding_comparison", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """results and predictions in benchmark.results' schema; the patch pair's vote is wrong
    where its mean-probability prediction is right on every fourth track, so the two differ."""
    results, preds = [], []
    for pair, (offset, counts) in RIGHT.items():
        for fold, n in enumerate(counts):
            ok = np.array([offset <= pos < offset + n for pos in range(PER_FOLD)])
            vote = ok & ((np.arange(PER_FOLD) % 4 != 0) | (pair != PATCH))
            done = not (pair == BROKEN and fold == 2)
            for pos in range(PER_FOLD) if done else ():
                preds.append(
                    {
                        "feature_set": pair[0],
                        "family": pair[1],
                        "protocol": "artist_kfold",
                        "fold": fold,
                        "track_id": f"t{fold}-{pos:02d}",
                        "y_true": "rock",
                        "y_pred": "rock" if ok[pos] else "jazz",
                        "y_vote": "rock" if vote[pos] else "jazz",
                        "correct": bool(ok[pos]),
                    }
                )
            results.append(
                {
                    "benchmark": "embeddings",
                    "feature_set": pair[0],
                    "family": pair[1],
                    "protocol": "artist_kfold",
                    "fold": fold,
                    "status": "done" if done else "error",
                    "accuracy": ok.mean() if done else np.nan,
                    "balanced_accuracy": ok.mean() if done else np.nan,
                    "macro_f1": ok.mean() if done else np.nan,
                    "accuracy_vote": vote.mean() if done else np.nan,
                    "n_train": 4 * PER_FOLD,
                    "n_test": PER_FOLD,
                }
            )
    return results_frame(results), pd.DataFrame(preds)


def _correct(preds: pd.DataFrame, pair: tuple[str, str]) -> np.ndarray:
    mine = preds[(preds["feature_set"] == pair[0]) & (preds["family"] == pair[1])]
    return mine.sort_values(["fold", "track_id"])["correct"].to_numpy(bool)


@pytest.fixture(scope="module")
def table(script: ModuleType) -> pd.DataFrame:
    results, preds = _tables()
    return script.against_references(results, preds, [EMB, LIB], n_boot=300)


def _row(table: pd.DataFrame, pair: tuple[str, str], ref: tuple[str, str]) -> pd.Series:
    sel = table[
        (table["feature_set"] == pair[0])
        & (table["family"] == pair[1])
        & (table["reference"] == f"{ref[0]} · {ref[1]}")
    ]
    assert len(sel) == 1
    return sel.iloc[0]


def test_every_complete_pair_meets_every_reference(table: pd.DataFrame) -> None:
    pairs = list(dict.fromkeys(zip(table["feature_set"], table["family"], strict=True)))
    assert pairs == [EMB, PATCH, LIB]  # best mean fold accuracy first; the broken pair left out
    assert len(table) == 6
    assert _row(table, EMB, EMB)["is_baseline"] and _row(table, EMB, EMB)["delta"] == 0


def test_numbers_are_the_paired_tests_on_the_same_tracks(table: pd.DataFrame) -> None:
    _, preds = _tables()
    r = _row(table, PATCH, LIB)
    per_fold = np.array(RIGHT[PATCH][1]) - np.array(RIGHT[LIB][1])
    assert r["delta"] == pytest.approx(per_fold.mean() / PER_FOLD)
    assert r["test"] == "corrected_t" and r["n_common"] == FOLDS * PER_FOLD
    b, c, p = mcnemar_exact(_correct(preds, PATCH), _correct(preds, LIB))
    assert (r["mcnemar_b"], r["mcnemar_c"], r["p_mcnemar"]) == (b, c, pytest.approx(p))
    assert r["delta_ci_low"] < r["delta_oof"] < r["delta_ci_high"]


def test_holm_runs_once_over_the_distinct_comparisons(table: pd.DataFrame) -> None:
    # PATCH vs EMB, PATCH vs LIB, and EMB vs LIB (printed twice, once per reference)
    distinct = [_row(table, PATCH, EMB), _row(table, PATCH, LIB), _row(table, EMB, LIB)]
    expected = holm(np.array([r["p_value"] for r in distinct]))
    assert [r["p_holm"] for r in distinct] == pytest.approx(list(expected))
    mcnemar = holm(np.array([r["p_mcnemar"] for r in distinct]))
    assert [r["p_mcnemar_holm"] for r in distinct] == pytest.approx(list(mcnemar))
    mirror = _row(table, LIB, EMB)
    assert mirror["p_holm"] == pytest.approx(expected[2])
    assert mirror["delta"] == pytest.approx(-_row(table, EMB, LIB)["delta"])
    assert set(table["n_holm"]) == {3}


def test_vote_accuracy_only_where_the_vote_differs(table: pd.DataFrame) -> None:
    _, preds = _tables()
    patch = preds[preds["feature_set"] == PATCH[0]]
    expected = (patch["y_vote"] == patch["y_true"]).mean()
    assert _row(table, PATCH, EMB)["vote_accuracy"] == pytest.approx(expected)
    assert expected < _row(table, PATCH, EMB)["oof_accuracy"]
    assert table.loc[table["feature_set"] != PATCH[0], "vote_accuracy"].isna().all()


def test_cli_prints_markdown_and_text_and_refuses_an_unknown_reference(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, preds = _tables()
    write_table(results, tmp_path / "results.parquet")
    write_table(preds, tmp_path / "predictions.parquet")
    refs = ["--against", "embedding_musicnn:logreg", "--against", "librosa_30s:logreg"]
    script.main([str(tmp_path), *refs, "--markdown", "--n-boot", "200"])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 3  # header, rule, one row per complete pair
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert "artist_kfold (5 folds, 100 tracks)" in out and "Holm over the 3" in out
    assert "| `librosa_30s · logreg` |" in out and "reference" in out
    script.main([str(tmp_path), *refs, "--n-boot", "200"])
    text = capsys.readouterr().out
    assert text.startswith("== protocol artist_kfold") and "embedding_musicnn_3s · svm_rbf" in text
    script.main([str(tmp_path), "--set", "embedding_musicnn"])  # the original mode still runs
    assert "embedding_musicnn against each other set" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="csv_30s · svm_rbf has no done row"):
        script.main([str(tmp_path), "--against", "csv_30s:svm_rbf"])
