"""The leaderboard page: its numbers are stats.py's numbers on the results files, it shows every
section issue 3 asks for, it survives partial results, and the CLI writes it.

One small real benchmark (``report_bench``, tests/conftest.py) is shared with
``tests/integration/test_ui.py`` (Chromium, MLflow
UI): tuned on a noisier copy of the fake GTZAN folder so accuracies and intervals are not all 1.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import REPORT_CONFIG

from benchmark import stats
from benchmark.cli import main
from benchmark.report import (
    ALPHA,
    LEADERBOARD,
    N_BOOT,
    find_results_dir,
    mlflow_ui_argv,
    write_report,
)
from benchmark.report.formatting import p_is, pval
from benchmark.report.view import progress_text


@pytest.fixture(scope="module")
def bench(report_bench: Path) -> Path:
    return report_bench


@pytest.fixture(scope="module")
def page(bench: Path) -> str:
    path = write_report(bench)
    assert path == bench / LEADERBOARD
    return path.read_text(encoding="utf-8")


class Elements(HTMLParser):
    """Start tags with their attributes, plus the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Elements:
    p = Elements()
    p.feed(html)
    return p


def with_class(doc: Elements, tag: str, cls: str) -> list[dict[str, str]]:
    return [a for t, a in doc.tags if t == tag and cls in a.get("class", "").split()]


def text_of(doc: Elements) -> str:
    return re.sub(r"\s+", " ", " ".join(doc.text))


def same(page_value: str, value: float) -> bool:
    if page_value == "nan":
        return math.isnan(value)
    return float(page_value) == value


# ------------------------------------------------------------------------------------------------


def test_p_values_and_intervals_equal_stats_on_the_files(bench: Path, page: str) -> None:
    doc = parse(page)
    tables = with_class(doc, "table", "leaderboard")
    assert {t["data-protocol"] for t in tables} == {"artist_kfold", "fault_filtered"}
    settings = {(t["data-n-boot"], t["data-seed"], t["data-alpha"]) for t in tables}
    assert settings == {(str(N_BOOT), "5", str(ALPHA))}

    # recompute from the files alone, with the settings the page states
    results = pd.read_parquet(bench / "results.parquet")
    predictions = pd.read_parquet(bench / "predictions.parquet")
    run = json.loads((bench / "run.json").read_text())
    expected = stats.compare_to_baseline(
        results,
        predictions,
        run["config"]["baseline"],
        n_boot=N_BOOT,
        seed=run["seed"],
        alpha=ALPHA,
    )
    rows = with_class(doc, "tr", "pair-row")
    # 3 pairs and 3 ensemble candidates under each of the two protocols
    assert len(rows) == len(expected) == 2 * (3 + 3)
    by_key = {(r["data-protocol"], r["data-feature-set"], r["data-family"]): r for r in rows}
    columns = ("accuracy", "oof_accuracy", "ci_low", "ci_high", "delta", "p_value", "p_holm")
    for _, e in expected.iterrows():
        r = by_key[(e["protocol"], e["feature_set"], e["family"])]
        for col in columns:
            assert same(r[f"data-{col.replace('_', '-')}"], float(e[col])), (col, r, e[col])
        assert r["data-verdict"] == e["verdict"]
    # the tests ran: every non-baseline pair has a p-value, the baseline none
    tested = expected[~expected["is_baseline"]]
    assert tested["p_holm"].notna().all() and expected["is_baseline"].sum() == 2
    assert set(tested["test"]) == {"corrected_t", "mcnemar"}

    # and the visible cells show the same numbers
    text = text_of(doc)
    for _, e in expected.iterrows():
        ci = f"{100 * e['ci_low']:.1f} % – {100 * e['ci_high']:.1f} %"
        assert ci in text
        if not e["is_baseline"]:
            p = e["p_holm"]
            assert ("< 0.001" if p < 0.001 else f"{p:.3f}") in text


def test_page_shows_every_section_issue_3_asks_for(bench: Path, page: str) -> None:
    doc = parse(page)
    text = text_of(doc)
    run = json.loads((bench / "run.json").read_text())
    # table per protocol, named with it; marks for the verdicts
    assert "Leaderboard under artist_kfold" in text and "Leaderboard under fault_filtered" in text
    for mark in ("▲ better", "● no evidence", "▼ worse", "◆ baseline"):
        assert mark in text
    headers = [a for t, a in doc.tags if t == "th" and a.get("data-sort")]
    assert len(headers) == 2 * 13  # the coverage column among them
    # seed references with the protocol note
    assert "seed author: CSV MLP ≈ 60 %" in text and "seed author: spectrogram CNN ≈ 40 %" in text
    assert "random train/test split" in text and "optimistic protocol" in text
    # best pair: confusion matrix and per-genre accuracy, per protocol
    assert len(with_class(doc, "table", "cm")) == 2
    assert len(with_class(doc, "table", "per-genre")) == 2
    assert "Best hyperparameters" in text
    # critical-difference diagram: 3 families over 2 blocks (csv_30s · 2 protocols)
    assert 'id="cd-diagram"' in page and "Friedman χ²" in text
    assert "CD = " in text
    # optimisation histories from the Optuna storage
    assert len(with_class(doc, "polyline", "best-mean")) >= 2
    # provenance from run.json
    for value in (
        run["data_checksum"],
        run["git_commit"],
        run["config_digest"],
        run["finished_at"],
    ):
        assert str(value) in text
    assert run["versions"]["optuna"] in text and "wall time" in text


def test_page_is_self_contained(page: str) -> None:
    doc = parse(page)
    assert not [a for t, a in doc.tags if t in ("script", "img", "iframe") and a.get("src")]
    assert not [a for t, a in doc.tags if t == "link" and not a.get("href", "").startswith("data:")]
    for t, a in doc.tags:
        for key in ("href", "src", "xlink:href", "action"):
            value = a.get(key, "")
            assert not re.match(r"(?i)(https?:)?//", value), (t, key, value)
    assert "@import" not in page and "url(http" not in page
    # matplotlib's universal style rule is scoped to the CD diagram, not the whole page
    assert not re.search(r"<style[^>]*>\s*\*", page)


def _subset(bench: Path, dest: Path, keep, *, drop: tuple[str, ...] = ()) -> Path:
    """A results folder holding the rows of ``bench`` that ``keep`` selects."""
    dest.mkdir()
    for name in ("results.parquet", "predictions.parquet"):
        df = pd.read_parquet(bench / name)
        df[keep(df)].reset_index(drop=True).to_parquet(dest / name, index=False)
    for name in ("splits.parquet", "run.json"):
        shutil.copy(bench / name, dest / name)
    for name in drop:
        (dest / name).unlink()
    return dest


def test_partial_results_one_protocol_one_family(bench: Path, tmp_path: Path) -> None:
    d = _subset(
        bench,
        tmp_path / "one",
        lambda df: (df["protocol"] == "fault_filtered") & (df["family"] == "lda"),
        drop=("run.json",),
    )
    html = write_report(d).read_text()
    text = text_of(parse(html))
    assert "Leaderboard under fault_filtered" in text
    assert 'data-protocol="artist_kfold"' not in html
    assert "No critical-difference diagram: needs ≥ 3 model families" in text
    assert "run.json is missing" in text
    # without run.json the default baseline (csv_30s · seed_mlp) is absent: no test is possible
    assert "no pair can be tested" in text


def test_partial_results_errors_skips_and_missing_baseline(bench: Path, tmp_path: Path) -> None:
    d = _subset(bench, tmp_path / "err", lambda df: df["family"] != "lda")  # no baseline
    res = pd.read_parquet(d / "results.parquet")
    bad = (res["family"] == "dummy") & (res["protocol"] == "artist_kfold") & (res["fold"] == 1)
    res.loc[bad, "status"] = "error"
    res.loc[bad, "message"] = "ValueError: boom in fold 1"
    res.loc[bad, ["accuracy", "balanced_accuracy", "macro_f1"]] = np.nan
    skip = (
        res[res["family"] == "logreg"]
        .head(1)
        .assign(
            feature_set="csv_3s", fold=-1, status="skip", message="features_3_sec.csv is missing"
        )
    )
    pd.concat([res, skip]).to_parquet(d / "results.parquet", index=False)
    (d / "optuna.db").write_bytes(b"")  # an unreadable storage must not break the page
    doc = parse(write_report(d).read_text())
    text = text_of(doc)
    unranked = {
        (a["data-feature-set"], a["data-family"]) for a in with_class(doc, "tr", "unranked-row")
    }
    assert ("csv_30s", "dummy") in unranked and ("csv_3s", "logreg") in unranked
    assert "boom in fold 1" in text and "features_3_sec.csv is missing" in text
    assert "error on fold 1" in text
    assert "no pair can be tested" in text
    verdicts = {a["data-verdict"] for a in with_class(doc, "tr", "pair-row")}
    assert verdicts == {"n/a"}


def test_partial_results_without_predictions_or_storage(bench: Path, tmp_path: Path) -> None:
    # run.json names the run's Optuna storage: without it and without optuna.db there is none
    d = _subset(
        bench,
        tmp_path / "bare",
        lambda df: df["protocol"] == "artist_kfold",
        drop=("predictions.parquet", "run.json"),
    )
    text = text_of(parse(write_report(d).read_text()))
    assert "predictions.parquet is missing" in text
    # the histories come from trials.parquet, never from the Optuna storage
    assert "no optimisation history (no trials.parquet" in text
    assert "No out-of-fold predictions stored" in text


def test_only_skipped_pairs_still_give_a_page(bench: Path, tmp_path: Path) -> None:
    d = _subset(bench, tmp_path / "skip", lambda df: df["protocol"] == "fault_filtered")
    res = pd.read_parquet(d / "results.parquet")
    res = res.assign(status="skip", message="splits/test_filtered.txt is missing", fold=-1)
    res[["accuracy", "balanced_accuracy", "macro_f1"]] = np.nan
    res.to_parquet(d / "results.parquet", index=False)
    pd.read_parquet(d / "predictions.parquet").iloc[0:0].to_parquet(d / "predictions.parquet")
    text = text_of(parse(write_report(d).read_text()))
    assert "nothing to rank" in text and "splits/test_filtered.txt is missing" in text


def test_find_results_dir_picks_the_latest_benchmark(tmp_path: Path) -> None:
    import os

    for name, mtime in (("old", 1_000_000), ("new", 2_000_000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.parquet").write_bytes(b"x")
        os.utime(tmp_path / name / "results.parquet", (mtime, mtime))
    assert find_results_dir(root=tmp_path) == tmp_path / "new"
    assert find_results_dir(tmp_path) == tmp_path / "new"
    assert find_results_dir(tmp_path / "old") == tmp_path / "old"


def test_cli_report_prints_the_path_and_errors_in_one_line(
    bench: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["report", str(bench)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(bench / LEADERBOARD)
    # default: the most recent folder under ./results
    monkeypatch.chdir(bench.parent.parent)
    result = runner.invoke(main, ["report"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(LEADERBOARD)
    result = runner.invoke(main, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert [ln for ln in result.output.splitlines() if ln.startswith("error:")]


def test_cli_ui_refuses_a_folder_without_tracking_store(tmp_path: Path) -> None:
    (tmp_path / "results.parquet").write_bytes(b"x")
    result = CliRunner().invoke(main, ["ui", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2 and "no MLflow tracking store" in result.output


def test_cli_ui_refuses_a_busy_port(bench: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", str(bench), "--port", str(port)])
    assert result.exit_code == 2 and f"port {port} on 127.0.0.1 is not free" in result.output


def test_mlflow_ui_argv_binds_loopback(bench: Path) -> None:
    argv = mlflow_ui_argv(bench, 5123, "python")
    assert argv[:4] == ["python", "-m", "mlflow", "ui"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "5123"
    assert argv[argv.index("--backend-store-uri") + 1].endswith("mlflow.db")


def test_cli_run_writes_the_leaderboard(fake_gtzan: Path, tmp_path: Path, make_config) -> None:
    config = make_config.file(
        **{**REPORT_CONFIG, "families": ["lda"], "protocols": {"fault_filtered": {}}}, n_trials=1
    )
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--config",
            str(config),
            "--data-dir",
            str(fake_gtzan),
            "--results-dir",
            str(tmp_path / "results"),
            "--no-tracking",
        ],
    )
    assert result.exit_code == 0, result.output
    page = tmp_path / "results" / "rep" / LEADERBOARD
    assert page.is_file() and f"leaderboard: {page}" in result.output.replace("\n", "")
    assert "Leaderboard under fault_filtered" in page.read_text()


def test_ensembles_are_tested_against_the_best_single_pair(bench: Path, page: str) -> None:
    """The page's ensemble table: each candidate against the protocol's best single pair,
    with the numbers :func:`benchmark.stats.compare_to_baseline` gives on the files."""
    doc = parse(page)
    results = pd.read_parquet(bench / "results.parquet")
    predictions = pd.read_parquet(bench / "predictions.parquet")
    rows = with_class(doc, "tr", "ensemble-row")
    assert {(r["data-protocol"], r["data-family"]) for r in rows} == {
        (p, m) for p in ("artist_kfold", "fault_filtered") for m in ("greedy", "stacking", "top_k")
    }
    for protocol in ("artist_kfold", "fault_filtered"):
        res = results[results["protocol"] == protocol]
        pairs = res[res["feature_set"] != "ensemble"]
        best = pairs.groupby(["feature_set", "family"])["accuracy"].mean().idxmax()
        keep = (res["feature_set"] == "ensemble") | (
            (res["feature_set"] == best[0]) & (res["family"] == best[1])
        )
        preds = predictions[predictions["protocol"] == protocol]
        pkeep = (preds["feature_set"] == "ensemble") | (
            (preds["feature_set"] == best[0]) & (preds["family"] == best[1])
        )
        expected = stats.compare_to_baseline(
            res[keep], preds[pkeep], best, n_boot=N_BOOT, seed=5, alpha=ALPHA
        )
        for r in rows:
            if r["data-protocol"] != protocol:
                continue
            e = expected[expected["family"] == r["data-family"]].iloc[0]
            assert same(r["data-delta"], e["delta"]) and same(r["data-p-holm"], e["p_holm"])
            assert r["data-verdict"] == e["verdict"]
    assert len(with_class(doc, "span", "member")) >= len(rows)  # members are listed


def test_the_report_needs_no_optuna_storage(bench: Path, page: str, tmp_path: Path) -> None:
    """With optuna.db gone, the page's tables are the same (histories read trials.parquet)."""
    copy = tmp_path / "no-db"
    shutil.copytree(bench, copy)
    (copy / "optuna.db").unlink()
    again = parse(write_report(copy).read_text())
    first = parse(page)
    for cls in ("pair-row", "ensemble-row"):
        a = [sorted(r.items()) for r in with_class(first, "tr", cls)]
        b = [sorted(r.items()) for r in with_class(again, "tr", cls)]
        assert a == b and a
    assert text_of(again).count("no optimisation history") == text_of(first).count(
        "no optimisation history"
    )


def test_report_with_an_unreachable_storage_is_one_error_line(bench: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from benchmark.cli import main

    copy = tmp_path / "copy"
    shutil.copytree(bench, copy)
    url = "postgresql+psycopg://u:secret@127.0.0.1:1/x"
    res = CliRunner().invoke(main, ["report", str(copy), "--storage", url])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot open the Optuna storage")
    assert "secret" not in res.output and "u:***@" in res.output


def test_p_values_and_counts_say_what_they_are(bench: Path, page: str) -> None:
    """One helper writes every p-value in a sentence ("p < 0.001", "p = 0.012", never
    "p = < 0.001"), and the header's count names what it counts: pairs, then folds."""
    assert [p_is(v) for v in (0.0004, 0.0123, 1.0, math.nan)] == [
        "p < 0.001",
        "p = 0.012",
        "p = 1.000",
        "p = –",
    ]
    assert p_is(0.0004, "raw p") == "raw p < 0.001" and pval(0.0004) == "< 0.001"
    assert "= <" not in page and "= &lt;" not in page
    cards = re.findall(r"p<sub>Holm</sub> ([^<]*)</span>", page)
    assert len(cards) == 2 and all(re.fullmatch(r"(< 0\.001|= [01]\.\d{3})", c) for c in cards)
    text = text_of(parse(page))
    assert re.search(r"Friedman χ² = [\d.]+, p (< 0\.001|= [01]\.\d{3}) over", text)
    assert re.search(r"raw p (< 0\.001|= [01]\.\d{3})", page)  # the p-value cells' tooltips

    res = pd.read_parquet(bench / "results.parquet")
    n_pairs = res.groupby(["feature_set", "family", "protocol"]).ngroups
    assert f"{n_pairs} pair × protocol combinations, {len(res)} of {len(res)} folds done" in text
    res.loc[res.index[:2], "status"] = ["error", "timeout"]
    skipped = res.head(1).assign(feature_set="csv_3s", fold=-1, status="skip")
    assert progress_text(pd.concat([res, skipped])) == (
        f"{n_pairs + 1} pair × protocol combinations, {len(res) - 2} of {len(res)} folds done"
        " (1 error, 1 timeout); 1 pair skipped"
    )
