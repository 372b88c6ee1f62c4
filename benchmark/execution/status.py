"""``genrebench status``: where a benchmark stands, per pair: the folds it has finished (their
outcomes in the results folder, :mod:`benchmark.execution.fold_outcomes`), the trials of its
studies (the Optuna storage) and, while a run is going, its Dask dashboard.

Only what has started is known: a benchmark's plan lives in its config, not in the storage, so
folds not yet started are not listed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import GenrebenchError
from benchmark.execution.fold_outcomes import FoldOutcomes
from benchmark.results import CLUSTER_FILE, OUTCOMES_DIR
from benchmark.storage import journal_path, mask_url, open_storage
from benchmark.tuning.trial_budget import is_counted

__all__ = [
    "CLUSTER_FILE",
    "Progress",
    "parse_study_name",
    "progress",
    "trial_counts",
]


@dataclass
class Progress:
    name: str
    storage: str
    pairs: pd.DataFrame  # one row per pair: folds started, done, trials, running trials
    folds_started: int
    folds_done: int
    trials_finished: int
    #: the running run's cluster (``scheduler``, ``dashboard``, ``pid``, ``live``); None: none
    cluster: dict[str, Any] | None = None


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
    """``(benchmark, pair, fold, config digest)`` of a name :func:`benchmark.tuning.job.study_name`
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


def progress(url: str, results_dir: Path, name: str | None = None) -> Progress:
    """Where benchmark ``name`` (None: the storage's only one) stands: a row per pair with its
    started folds, those finished (an outcome in ``results_dir/<name>/outcomes``), their
    trials and the trials running now."""
    storage = open_storage(url)
    by_run = _run_benchmarks(storage)
    if name is None:
        if len(by_run) != 1:
            raise GenrebenchError(
                f"{mask_url(url)} holds {len(by_run)} benchmarks ({', '.join(by_run)}): "
                "pass --config NAME"
            )
        name = next(iter(by_run))
    if name not in by_run:
        known = ", ".join(by_run) or "none"
        raise GenrebenchError(f"no benchmark {name!r} in {mask_url(url)} (it holds: {known})")
    counts = trial_counts(storage, url)
    folder = _results_folder(url, Path(results_dir) / name)
    stored = FoldOutcomes(folder)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in by_run[name]:
        parsed = parse_study_name(s.study_name)
        assert parsed is not None
        fs, fam, proto = parsed[1]
        row = rows.setdefault(
            parsed[1],
            {"protocol": proto, "feature_set": fs, "family": fam}
            | dict.fromkeys(("folds", "done", "trials", "running_trials"), 0),
        )
        row["folds"] += 1
        row["done"] += stored.path(s.study_name).is_file()
        state = counts.get(s.study_name, {})
        row["trials"] += state.get("COMPLETE", 0) + state.get("PRUNED", 0)
        row["running_trials"] += state.get("RUNNING", 0)
    pairs = pd.DataFrame(list(rows.values()))
    pairs = pairs.sort_values(["protocol", "feature_set", "family"]).reset_index(drop=True)
    return Progress(
        name=name,
        storage=mask_url(url),
        pairs=pairs,
        folds_started=int(pairs["folds"].sum()),
        folds_done=int(pairs["done"].sum()),
        trials_finished=int(pairs["trials"].sum()),
        cluster=read_cluster_file(folder),
    )


def _results_folder(url: str, given: Path) -> Path:
    """``given``, or the folder of a default SQLite storage (``results/<name>/optuna.db``) when
    ``given`` holds no outcomes: ``--storage`` alone then finds the run's folder too."""
    if (given / OUTCOMES_DIR).is_dir() or not url.startswith("sqlite:///"):
        return given
    beside = Path(url[len("sqlite:///") :]).parent
    return beside if (beside / OUTCOMES_DIR).is_dir() else given


def write_cluster_file(results_dir: Path, scheduler: str, dashboard: str) -> Path:
    """Note a running run's cluster in its results folder, for ``genrebench status``."""
    path = Path(results_dir) / CLUSTER_FILE
    info = {"scheduler": scheduler, "dashboard": dashboard, "pid": os.getpid()}
    path.write_text(json.dumps(info))
    return path


def read_cluster_file(results_dir: Path) -> dict[str, Any] | None:
    """The noted cluster, with ``live``: whether the run that noted it is still running here
    (a SIGKILLed run leaves its note behind)."""
    try:
        info: dict[str, Any] = json.loads((Path(results_dir) / CLUSTER_FILE).read_text())
    except (OSError, ValueError):
        return None
    try:
        pid = int(info.get("pid") or -1)
        if pid <= 0:
            raise ValueError(pid)
        os.kill(pid, 0)
        info["live"] = True
    except (OSError, ValueError):
        info["live"] = False
    return info
