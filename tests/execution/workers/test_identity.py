"""What makes workers one benchmark (:mod:`benchmark.execution.workers.identity`): the code
version hashes every module that changes results, a worker whose data, code or config differs
is refused, and the manifest carries the plan to workers and ``genrebench status``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmark.data import Dataset
from benchmark.execution.plan import RunOptions, make_plan, provenance
from benchmark.execution.workers.file_board import FileBoard
from benchmark.execution.workers.identity import (
    RefusedToJoin,
    benchmark_manifest,
    check_identity,
    code_version,
    identity,
    pair_tuple,
)


def test_the_code_version_hashes_every_module_that_changes_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers that join a benchmark must run the same code; a module renamed out of the hashed
    list would let two code versions mix rows silently, so a missing name is an error."""
    import benchmark
    import benchmark.execution.workers.identity as worker

    version = worker.code_version()
    assert version.startswith(f"{benchmark.__version__}+")
    monkeypatch.setattr(worker, "RESULT_CODE", (*worker.RESULT_CODE, "protocol.py"))
    with pytest.raises(RuntimeError, match="protocol.py"):
        worker.code_version()


def test_a_worker_that_differs_in_data_code_or_config_is_refused(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """The first worker's identity is the benchmark's: a later one matching it joins, one with
    another config digest, data checksum or code version is refused in one line naming it."""
    cfg = make_config()
    prov = provenance(cfg, Dataset.open(fake_gtzan))
    mine = identity(cfg, prov)
    assert mine == {
        "config_digest": cfg.digest(),
        "data_checksum": prov["data_checksum"],
        "code_version": code_version(),
    }
    board = FileBoard(tmp_path / "j.log.genrebench.json")
    record, _ = board.register_benchmark("t", mine, {"provenance": {"host": "first-host"}})
    check_identity(record, mine, "journal:///j.log")  # the same: joins
    for key, words in (
        ("config_digest", "config digest"),
        ("data_checksum", "data checksum"),
        ("code_version", "code version"),
    ):
        with pytest.raises(RefusedToJoin) as info:
            check_identity(record, {**mine, key: "other"}, "journal:///j.log")
        msg = str(info.value)
        assert f"its {words} is {mine[key]}, this worker's is other" in msg
        assert "first-host" in msg and "journal:///j.log" in msg and "\n" not in msg


def test_the_manifest_lists_the_plan_for_workers_that_have_no_data(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config(families=["logreg", "dummy"], budget="1h")
    dataset = Dataset.open(fake_gtzan)
    prov = provenance(cfg, dataset)
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path)
    plan = make_plan(cfg, dataset, opts, "sqlite:///x.db")
    manifest = benchmark_manifest(cfg, plan, prov, "postgresql://u:pw@h/db")
    assert manifest["storage"] == "postgresql://u:***@h/db" and manifest["budget_s"] == 3600
    assert [j["study"] for j in manifest["jobs"]] == [j.study_name for j in plan.jobs]
    assert manifest["jobs"][0] == {
        "study": plan.jobs[0].study_name,
        "pair": list(pair_tuple(plan.jobs[0].pair)),
        "fold": 0,
    }
    assert manifest["raced"] == ["artist_kfold"] and manifest["baseline"] == ["csv_30s", "lda"]
    assert manifest["fixed_families"] == ["dummy"]
    assert manifest["context"]["config_digest"] == cfg.digest()
    assert pd.DataFrame(manifest["splits"]).equals(plan.splits)
