"""``genrebench status``: where a benchmark stands, per pair, read from its storage alone.

From the workers' record and claims when workers run it, or, for a benchmark written by
``genrebench run`` (which keeps no record), from its studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from benchmark.errors import GenrebenchError
from benchmark.execution.workers.board import (
    FINALIZE,
    benchmark_record,
    fold_key,
    open_board,
)
from benchmark.storage import (
    journal_path,
    mask_url,
    open_storage,
)
from benchmark.trial_count import (
    is_counted,
)
from benchmark.tuning import OUTCOME_ATTR

__all__ = ["Progress", "parse_study_name", "progress", "trial_counts"]


@dataclass
class Progress:
    name: str
    storage: str
    n_trials: int
    pairs: pd.DataFrame  # one row per pair: folds, statuses, trials, running, workers
    workers: list[Any]
    folds_total: int
    folds_done: int
    trials_finished: int
    trials_budget: int
    finalized: bool
    grace_s: float
    #: from the studies of a ``genrebench run`` (no workers' record: no budget, no claims)
    written_by_run: bool = False


def trial_counts(storage: Any, url: str) -> dict[str, dict[str, int]]:
    """Trials per study and state: one query on a relational storage."""
    counts: dict[str, dict[str, int]] = {}
    if journal_path(url) is None:
        import sqlalchemy as sa

        engine = storage.engine
        sql = sa.text(
            "SELECT s.study_name, t.state, COUNT(*) FROM trials t "
            "JOIN studies s ON s.study_id = t.study_id GROUP BY s.study_name, t.state"
        )
        with engine.connect() as c:
            for name, state, n in c.execute(sql):
                state = getattr(state, "name", str(state)).split(".")[-1]
                counts.setdefault(name, {})[state] = int(n)
        return counts
    for s in storage.get_all_studies():
        for t in storage.get_all_trials(s._study_id, deepcopy=False):
            if is_counted(t):
                c = counts.setdefault(s.study_name, {})
                c[t.state.name] = c.get(t.state.name, 0) + 1
    return counts


def parse_study_name(study: str) -> tuple[str, tuple[str, str, str], int, str] | None:
    """``(benchmark, pair, fold, config digest)`` of a name :func:`benchmark.tuning.study_name`
    made, or None for any other study."""
    parts = study.rsplit(":", 5)
    if len(parts) != 6 or not parts[4].startswith("fold") or not parts[4][4:].isdigit():
        return None
    bench, fs, fam, proto, fold, digest = parts
    return bench, (fs, fam, proto), int(fold[4:]), digest


def _run_benchmarks(storage: Any) -> dict[str, list[Any]]:
    """The studies of each benchmark ``genrebench run`` wrote to ``storage``, by benchmark
    name: those of its newest config (a changed config starts new studies; the old ones stay)."""
    found: dict[str, dict[str, list[Any]]] = {}
    newest: dict[str, tuple[int, str]] = {}
    for s in storage.get_all_studies():
        parsed = parse_study_name(s.study_name)
        if parsed is None:
            continue
        bench, _, _, digest = parsed
        found.setdefault(bench, {}).setdefault(digest, []).append(s)
        newest[bench] = max(newest.get(bench, (-1, "")), (s._study_id, digest))
    return {bench: found[bench][newest[bench][1]] for bench in sorted(found)}


def _run_progress(
    storage: Any, url: str, name: str | None, by_run: dict[str, list[Any]], grace_s: float
) -> Progress:
    """:class:`Progress` of a benchmark written by ``genrebench run``, from its studies: one
    per (pair, fold) started so far, finished when its outcome is stored. The trial budget is
    not kept in the storage (``n_trials`` 0: unknown), and folds not started are not counted."""
    if name is None:
        if len(by_run) != 1:
            raise GenrebenchError(
                f"{mask_url(url)} holds {len(by_run)} benchmarks ({', '.join(by_run)}): "
                "pass --config NAME"
            )
        name = next(iter(by_run))
    counts = trial_counts(storage, url)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in by_run[name]:
        parsed = parse_study_name(s.study_name)
        assert parsed is not None
        pair = parsed[1]
        row = rows.setdefault(pair, _progress_row(pair))
        row["folds"] += 1
        state = counts.get(s.study_name, {})
        row["trials"] += state.get("COMPLETE", 0) + state.get("PRUNED", 0)
        row["running_trials"] += state.get("RUNNING", 0)
        outcome = s.user_attrs.get(OUTCOME_ATTR)
        if outcome is not None:
            status = outcome.get("status", "done")
            row[status if status in ("done", "error", "timeout") else "done"] += 1
    pairs = pd.DataFrame(list(rows.values()))
    pairs["workers"] = ""
    pairs["skipped"] = None
    pairs = pairs.sort_values(["protocol", "feature_set", "family"]).reset_index(drop=True)
    done = int(pairs[["done", "error", "timeout"]].to_numpy().sum())
    return Progress(
        name=name,
        storage=mask_url(url),
        n_trials=0,
        pairs=pairs,
        workers=[],
        folds_total=len(by_run[name]),
        folds_done=done,
        trials_finished=int(pairs["trials"].sum()),
        trials_budget=0,
        finalized=False,
        grace_s=grace_s,
        written_by_run=True,
    )


def _progress_row(pair: tuple[str, ...]) -> dict[str, Any]:
    """A pair's row of :func:`progress` before any fold is counted."""
    counters = ("folds", "done", "error", "timeout", "active", "trials", "budget")
    return {
        "feature_set": pair[0],
        "family": pair[1],
        "protocol": pair[2],
        **dict.fromkeys(counters, 0),
        "running_trials": 0,
        "workers": set(),
    }


def progress(url: str, name: str | None = None, grace_s: float = 60) -> Progress:
    """Where the benchmark stands, per pair, from the storage alone: from the workers' record,
    or for a benchmark written by ``genrebench run`` (which keeps none) from its studies."""
    storage = open_storage(url)
    board = open_board(url)
    try:
        names = board.benchmarks()
        if name not in names and (name is not None or not names):
            by_run = _run_benchmarks(storage)
            if (name is None and by_run) or name in by_run:
                return _run_progress(storage, url, name, by_run, grace_s)
        record = benchmark_record(board, name, url)
        claims = board.claims(record.name)
        workers = board.workers(record.name)
        counts = trial_counts(storage, url)
    finally:
        board.close()
    manifest = record.manifest
    n_trials = int(manifest["n_trials"])
    fixed = set(manifest.get("fixed_families", ()))
    live = {w.worker for w in workers if w.state == "running" and w.age_s <= grace_s}
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for job in manifest["jobs"]:
        pair = tuple(job["pair"])
        row = rows.setdefault(pair, _progress_row(pair))
        row["folds"] += 1
        claim = claims.get(fold_key(job["study"]))
        state = counts.get(job["study"], {})
        if pair[1] not in fixed:
            row["budget"] += n_trials
            row["trials"] += min(n_trials, state.get("COMPLETE", 0) + state.get("PRUNED", 0))
        row["running_trials"] += state.get("RUNNING", 0)
        if claim is not None and claim.done:
            key = claim.status if claim.status in ("done", "error", "timeout") else "done"
            row[key] += 1
        elif claim is not None and claim.worker in live:
            row["active"] += 1
            row["workers"].add(claim.worker)
    for o in manifest["skipped"]:
        pair = tuple(o["pair"])
        rows.setdefault(pair, {**_progress_row(pair), "skipped": o["message"]})
    pairs = pd.DataFrame(list(rows.values()))
    if len(pairs):
        pairs["workers"] = pairs["workers"].map(lambda s: ", ".join(sorted(s)))
        if "skipped" not in pairs.columns:
            pairs["skipped"] = None
        pairs = pairs.sort_values(["protocol", "feature_set", "family"]).reset_index(drop=True)
    fin = claims.get(FINALIZE)
    return Progress(
        name=record.name,
        storage=mask_url(url),
        n_trials=n_trials,
        pairs=pairs,
        workers=workers,
        folds_total=len(manifest["jobs"]),
        folds_done=int(pairs[["done", "error", "timeout"]].to_numpy().sum()) if len(pairs) else 0,
        trials_finished=int(pairs["trials"].sum()) if len(pairs) else 0,
        trials_budget=int(pairs["budget"].sum()) if len(pairs) else 0,
        finalized=bool(fin and fin.done),
        grace_s=grace_s,
    )
