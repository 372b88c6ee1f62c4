"""The results of a shared benchmark, from the storage alone.

The worker that sees the last fold finished (or ``genrebench status --write`` from any
machine) collects every stored outcome and writes the same files ``genrebench run`` writes,
through :mod:`benchmark.execution.outputs`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.ensembles import EnsembleSettings, run_ensemble_stage
from benchmark.errors import GenrebenchError
from benchmark.execution.local import RunResult
from benchmark.execution.outputs import write_outcome_files
from benchmark.execution.workers.board import (
    BenchmarkRecord,
    Board,
    benchmark_record,
    fold_key,
    open_board,
)
from benchmark.results import FoldOutcome, write_table
from benchmark.storage import (
    open_storage,
)
from benchmark.tuning import OUTCOME_ATTR

__all__ = ["assemble_results", "collect_outcomes", "write_results"]


def collect_outcomes(
    storage: Any, board: Board, record: BenchmarkRecord
) -> tuple[list[FoldOutcome], list[dict[str, Any]]]:
    """Every outcome the storage holds for the benchmark (skipped pairs included), and the
    jobs still pending."""
    attrs = {s.study_name: s.user_attrs for s in storage.get_all_studies()}
    claims = board.claims(record.name)
    outcomes = [FoldOutcome.from_json(o) for o in record.manifest["skipped"]]
    pending = []
    for job in record.manifest["jobs"]:
        stored = attrs.get(job["study"], {}).get(OUTCOME_ATTR)
        claim = claims.get(fold_key(job["study"]))
        if stored is not None:
            outcomes.append(FoldOutcome.from_json(stored))
        elif claim is not None and claim.done and claim.payload:
            outcomes.append(FoldOutcome.from_json(json.loads(claim.payload)))
        else:
            pending.append(job)
    return outcomes, pending


def assemble_results(
    url: str, name: str | None, results_root: Path, *, allow_partial: bool = False
) -> tuple[RunResult, int]:
    """Write the results tables of benchmark ``name`` (the storage's only one when None) from
    the storage alone; returns them and the number of folds still pending."""
    storage = open_storage(url)
    board = open_board(url)
    try:
        record = benchmark_record(board, name, url)
        outcomes, pending = collect_outcomes(storage, board, record)
        if pending and not allow_partial:
            raise GenrebenchError(
                f"benchmark {record.name!r} has {len(pending)} fold(s) still pending: wait for "
                "the workers, or pass --partial for a table of the finished folds"
            )
        result = write_results(record, outcomes, Path(results_root) / record.name, board, storage)
    finally:
        board.close()
    return result, len(pending)


def write_results(
    record: BenchmarkRecord,
    outcomes: list[FoldOutcome],
    results_dir: Path,
    board: Board,
    storage: Any,
) -> RunResult:
    manifest = record.manifest
    write_table(pd.DataFrame(manifest["splits"]), results_dir / "splits.parquet")
    results, predictions = write_outcome_files(results_dir, outcomes, manifest["context"], storage)
    settings = EnsembleSettings.from_config(manifest["provenance"]["config"].get("ensembles"))
    if settings is not None:
        results, predictions = run_ensemble_stage(results_dir, settings)
    wall = max(0.0, time.time() - record.created_at)
    prov = dict(manifest["provenance"])
    workers = board.workers(record.name)
    prov.update(
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_s=round(wall, 2),
        storage=manifest["storage"],
        protocols=manifest["protocols"],
        workers=[{"worker": w.worker, "host": w.host, "state": w.state} for w in workers],
        code_version=record.identity.get("code_version"),
    )
    (results_dir / "run.json").write_text(json.dumps(prov, indent=2, default=str))
    counts = results["status"].value_counts().to_dict()
    return RunResult(results_dir, results, predictions, wall, counts)
