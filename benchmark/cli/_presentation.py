"""How a run shows itself: the plan of ``run --dry-run``, a log's progress lines, the summary
table at the end of ``run`` and ``worker``, and the leaderboard written after them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.table import Table

from benchmark.cli._console import console, out

if TYPE_CHECKING:  # pandas only for the annotations: importing it costs every command ~0.5 s
    import pandas as pd
    from rich.console import JustifyMethod


def print_plan(plan: Any, schedule: Any, cfg: Any) -> None:
    """``run --dry-run``: what the run would do and how long the cost model says it takes."""
    from benchmark.config import format_duration

    b = schedule.budget
    jobs = schedule.scheduler.jobs
    table = Table(title="plan (cost measured on the data)", title_justify="left")
    for col in ("feature set", "family", "studies", "trials/study", "s/trial", "core-h"):
        table.add_column(col, justify="left" if col in ("feature set", "family") else "right")
    cost = schedule.scheduler.cost
    by_pair: dict[tuple[str, str], list[Any]] = {}
    for job in jobs:
        by_pair.setdefault((job.pair.feature_set, job.pair.family), []).append(job)
    for (fs, fam), group in sorted(by_pair.items()):
        core = sum(cost.job_seconds(j) for j in group) / 3600
        table.add_row(
            fs,
            fam,
            str(len(group)),
            str(group[0].n_trials),
            f"{cost.trial_seconds(group[0]):.2f}",
            f"{core:.3f}",
        )
    console.print(table)
    n_trials = sum(cost.trials_of(j) for j in jobs)
    console.print(
        f"{len(jobs)} studies ({b.n_left} not done yet), {n_trials} trials, "
        f"{len(plan.skipped)} skipped; cost measured in {schedule.measure_s:.0f} s",
        highlight=False,
    )
    extract_s = _print_extraction(plan, cfg)
    from benchmark.features.extraction_cost import extraction_wall_s

    extract_wall = extraction_wall_s(plan.extraction, cfg.n_jobs)
    console.print(
        f"without a budget: {b.full_core_s / 3600:.2f} core-hours, about "
        f"{format_duration(b.full_wall_s + b.after_s)} on {cfg.n_jobs} process(es) "
        f"(of which {format_duration(b.after_s)} ensembles and export)",
        highlight=False,
    )
    if plan.extraction:
        console.print(
            f"the study without a budget: {(b.full_core_s + extract_s) / 3600:.2f} core-hours "
            f"(tuning {b.full_core_s / 3600:.2f} + extraction {extract_s / 3600:.2f}), about "
            f"{format_duration(extract_wall + b.full_wall_s + b.after_s)} on {cfg.n_jobs} "
            "process(es)",
            highlight=False,
        )
    if b.budget_s is not None:
        share = (
            f"each study tunes for at most {format_duration(b.cap_s)} ({b.n_capped} of "
            f"{len(b.trials)} get fewer trials than planned; {b.share:.0%} of all trials)"
            if b.cap_s is not None
            else "every trial"
        )
        fits = "fits" if b.fits else "does not fit even with one trial per study: later folds "
        console.print(
            f"with the budget {format_duration(b.budget_s)}: {share}, "
            f"{b.core_s / 3600:.2f} core-hours, about {format_duration(b.wall_s + b.after_s)}; "
            f"{fits}{'' if b.fits else 'will be skipped'}",
            highlight=False,
        )
    if schedule.scheduler.race is not None:
        console.print(
            "racing is on: pairs shown worse than the leader stop early, so the run may end "
            "sooner than this",
            highlight=False,
        )


def _print_extraction(plan: Any, cfg: Any) -> float:
    """The dry run's extraction table (one row per audio feature set and input kind: clips, CPU
    seconds per clip and what is left to do) and the sets skipped with why; returns the
    core-seconds of extraction left."""
    from benchmark.config import format_duration
    from benchmark.features.extraction_cost import extraction_wall_s

    used = {j.pair.feature_set for j in plan.jobs}
    skipped: dict[str, str] = {}
    for o in plan.skipped:  # a set with no job at all: its input is missing
        if o.pair.feature_set not in used:
            skipped.setdefault(o.pair.feature_set, o.message)
    for fs, why in skipped.items():
        console.print(f"feature set {fs} skipped: {why}", highlight=False)
    if not plan.extraction:
        return 0.0
    table = Table(title="extraction from audio (before any study)", title_justify="left")
    for col in ("feature set", "input kind", "clips", "CPU s/clip", "core-h", "status"):
        table.add_column(
            col, justify="left" if col in ("feature set", "input kind", "status") else "right"
        )
    for e in plan.extraction:
        source = "measured" if e.source == "measured" else "one clip timed now"
        table.add_row(
            e.feature_set,
            e.input_kind,
            str(e.clips),
            f"{e.cpu_s_per_clip:.2f} ({source})",
            f"{e.core_s / 3600:.3f}",
            "cached" if e.cached else "to extract",
        )
    console.print(table)
    core_s = sum(e.core_s for e in plan.extraction)
    console.print(
        f"extraction: {core_s / 3600:.2f} core-hours, about "
        f"{format_duration(extraction_wall_s(plan.extraction, cfg.n_jobs))} on "
        f"{cfg.n_jobs} process(es); the studies of those sets are timed on placeholder rows "
        "of the same shape",
        highlight=False,
    )
    return core_s


class FoldLog:
    """Progress for a log (not a terminal: ``nohup``, ``docker compose logs``, CI): one line
    per finished fold, and a summary line every ``every_s`` seconds while the run lasts. Its
    trials are the finished folds' and those the running studies have finished so far (a
    50-trial study runs for minutes); the time left is the scheduler's cost-model estimate when
    it has one (it knows a CNN fold from an LDA fold), else the mean fold time so far."""

    def __init__(self, where: Console, every_s: float = 60.0) -> None:
        import threading

        self.where, self.every_s = where, every_s
        self.total = self.done = self.trials = 0
        self.t0 = time.monotonic()
        self._seconds_left: Callable[[], float | None] | None = None
        self._trials_running: Callable[[], int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="fold-log", daemon=True)

    def start(
        self,
        total: int,
        seconds_left: Callable[[], float | None] | None = None,
        trials_running: Callable[[], int] | None = None,
    ) -> None:
        self.total, self.t0 = total, time.monotonic()
        self._seconds_left, self._trials_running = seconds_left, trials_running
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def fold(self, text: str, trials: int) -> None:
        self.done += 1
        self.trials += trials
        self.where.print(f"[{self.done}/{self.total}] {text}", highlight=False, soft_wrap=True)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.t0
        estimate = self._seconds_left() if self._seconds_left is not None else None
        running = self._trials_running() if self._trials_running is not None else 0
        left = "?"
        if estimate is not None:
            left = f"{estimate / 60:.1f} min"
        elif self.done:
            left = f"{elapsed / self.done * (self.total - self.done) / 60:.1f} min"
        return (
            f"progress: {self.done}/{self.total} folds, {self.trials + running} trials, "
            f"{elapsed / 60:.1f} min elapsed, about {left} left"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            self.where.print(self.summary(), highlight=False, soft_wrap=True)


def write_leaderboard(results_dir: Path) -> None:
    """The leaderboard at the end of ``run``: a failure here never fails the finished run (the
    results are on disk; ``genrebench report`` writes it again)."""
    from benchmark.report import write_report

    try:
        path = write_report(results_dir)
    except Exception as exc:  # the benchmark itself succeeded
        console.print(
            f"[yellow]warning[/]: leaderboard not written ({type(exc).__name__}: {exc}); "
            f"retry with `genrebench report {results_dir}`",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(f"leaderboard: {path}", highlight=False, soft_wrap=True)


def summary_table(results: pd.DataFrame, baseline: dict[str, str]) -> None:
    """Mean accuracy per pair and protocol, best first, with Δ vs the baseline pair."""
    from benchmark.results import summarize_pairs

    summary = summarize_pairs(results, baseline)
    for protocol, rows in summary.groupby("protocol", sort=True):
        table = Table(title=f"protocol: {protocol}", title_justify="left")
        for col, justify in (
            ("feature set", "left"),
            ("family", "left"),
            ("accuracy", "right"),
            ("± std", "right"),
            ("bal. acc", "right"),
            ("Δ baseline", "right"),
            ("folds", "right"),
            ("trials", "right"),
            ("fit s", "right"),
        ):
            table.add_column(col, justify=cast("JustifyMethod", justify))
        for _, r in rows.iterrows():
            if r["status"] != "done":
                # a raced-out pair shows its mean over the folds it got (folds says how many)
                reached = r["status"] == "eliminated" and math.isfinite(r["accuracy"])
                table.add_row(
                    r["feature_set"],
                    r["family"],
                    f"{r['accuracy']:.3f} (eliminated)" if reached else r["status"],
                    "",
                    "",
                    "",
                    r["folds"],
                    "",
                    "",
                    style="dim",
                )
                continue
            mark = " (baseline)" if r["is_baseline"] else ""
            delta = "" if math.isnan(r["delta"]) or r["is_baseline"] else f"{r['delta']:+.3f}"
            table.add_row(
                r["feature_set"],
                r["family"] + mark,
                f"{r['accuracy']:.3f}",
                "" if math.isnan(r["accuracy_std"]) else f"{r['accuracy_std']:.3f}",
                f"{r['balanced_accuracy']:.3f}",
                delta,
                r["folds"],
                str(int(r["n_trials"])),
                f"{r['fit_s']:.2f}",
            )
        out.print(table)
