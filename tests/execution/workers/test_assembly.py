"""Results assembled from the stored outcomes workers wrote: a journal-file benchmark run by a
worker, assembled again elsewhere, gives the finalized tables; folds still pending are refused
or, when asked for, left out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import JOURNAL, journal_options

from benchmark.data import Dataset
from benchmark.errors import GenrebenchError
from benchmark.execution.plan import RunOptions, make_plan, provenance
from benchmark.execution.workers.assembly import assemble_results
from benchmark.execution.workers.board import open_board
from benchmark.execution.workers.identity import benchmark_manifest, identity
from benchmark.execution.workers.status import progress
from benchmark.execution.workers.worker import run_worker
from benchmark.results import read_table
from benchmark.tuning import run_fold


def test_workers_on_a_journal_file(fake_gtzan, tmp_path, make_config) -> None:
    cfg = make_config(**JOURNAL)
    opts = journal_options(fake_gtzan, tmp_path, "j")
    url = opts.storage_url
    summary = run_worker(cfg, opts)
    assert summary.complete and len(summary.evaluated) == 1
    res = summary.finalized.results
    assert len(res) == 1 and res["status"].tolist() == ["done"]
    assert (res["n_trials"] + res["n_pruned"]).tolist() == [3]
    prog = progress(url)
    assert (prog.folds_done, prog.trials_finished, prog.finalized) == (1, 3, True)
    again = run_worker(cfg, opts)  # a late worker finds nothing to do
    assert again.evaluated == [] and again.complete and again.finalized is None
    result, pending = assemble_results(url, None, tmp_path / "elsewhere")
    assert pending == 0
    pd.testing.assert_frame_equal(result.results, res)


def test_pending_folds_are_refused_unless_a_partial_table_is_asked_for(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """From the storage alone: a benchmark record, one fold's stored outcome, one fold never
    run. Assembly refuses, or with ``allow_partial`` writes the finished fold's row."""
    two_folds = {"artist_kfold": {"n_folds": 2}}
    cfg = make_config(**{**JOURNAL, "name": "t", "protocols": two_folds, "ensembles": False})
    dataset = Dataset.open(fake_gtzan)
    prov = provenance(cfg, dataset)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    plan = make_plan(cfg, dataset, RunOptions(results_root=tmp_path), url)
    board = open_board(url)
    board.register_benchmark(
        cfg.name, identity(cfg, prov), benchmark_manifest(cfg, plan, prov, url)
    )
    board.close()
    assert run_fold(plan.jobs[0]).status == "done"
    with pytest.raises(GenrebenchError, match="'t' has 1 fold\\(s\\) still pending"):
        assemble_results(url, None, tmp_path / "out")
    result, pending = assemble_results(url, "t", tmp_path / "out", allow_partial=True)
    assert pending == 1 and result.results_dir == tmp_path / "out" / "t"
    assert result.results[["family", "fold", "status"]].values.tolist() == [["logreg", 0, "done"]]
    assert {p.name for p in result.results_dir.iterdir()} >= {
        "results.parquet", "predictions.parquet", "trials.parquet", "splits.parquet", "run.json"
    }  # fmt: skip
    pd.testing.assert_frame_equal(read_table(result.results_dir / "splits.parquet"), plan.splits)
