"""Where a finished fold's outcome lives: one JSON file per fold in the results folder.

``genrebench run`` writes each finished fold's :class:`~benchmark.results.FoldOutcome` (scores,
params, every prediction) to ``outcomes/<study>.json`` beside the results files as it arrives
from a worker, and a rerun or a resumed run reads it back there instead of redoing the fold.
The Optuna storage keeps only the trials, so a shared PostgreSQL carries no predictions.

A file is written whole or not at all (a temporary file renamed), so a run killed while
writing leaves the fold to be refit, never a torn outcome. Only ``done`` outcomes are kept: an
error or a timeout is tried again by the next run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmark.results import OUTCOMES_DIR, FoldOutcome
from benchmark.tuning.fold import satisfies
from benchmark.tuning.job import FoldJob

__all__ = ["FoldOutcomes"]


class FoldOutcomes:
    """The finished folds' outcomes of one results folder."""

    def __init__(self, results_dir: Path) -> None:
        self.folder = Path(results_dir) / OUTCOMES_DIR

    def path(self, study_name: str) -> Path:
        """The file of a study's outcome (the study name carries the config digest, so a
        changed config never reads an old outcome)."""
        return self.folder / f"{study_name.replace(':', '.').replace('/', '_')}.json"

    def get(self, job: FoldJob) -> FoldOutcome | None:
        """The stored outcome that answers ``job`` (None: none, or tuned with fewer trials than
        ``job`` now plans, so the study goes on and the fold is refit)."""
        path = self.path(job.study_name)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        outcome = FoldOutcome.from_json(data)
        return outcome if satisfies(outcome, job) else None

    def put(self, outcome: FoldOutcome) -> None:
        """Keep a ``done`` outcome (others are left for the next run to try again)."""
        if outcome.status != "done" or not outcome.study_name:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(outcome.study_name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(outcome.to_json()))
        os.replace(tmp, path)

    def all(self) -> list[FoldOutcome]:
        """Every stored outcome, in file-name order (a run still going: what it has finished)."""
        paths = sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []
        return [FoldOutcome.from_json(json.loads(p.read_text())) for p in paths]

    def count(self) -> int:
        """Folds stored so far (the progress of a run in its folder)."""
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0
