"""``genrebench worker``: any number of processes, on any machines, finish one benchmark together.

Every worker opens the same storage URL (PostgreSQL for many machines, the SQLite file for
several processes on one, a journal file on a shared file system) and plans the benchmark from
its own copy of the data. Then:

1. **Identity.** The first worker stores the benchmark's record (config digest, data checksum,
   code version, and a manifest of the jobs, skipped pairs and splits); a later worker whose
   identity differs refuses to join, with one line saying what differs.
2. **Work.** A (pair, fold) is *claimed* (:mod:`benchmark.execution.workers.board`) by one worker,
   which tunes its study, refits the best params, scores the outer test part once and stores the
   outcome with the study. A worker that finds nothing to claim *helps*: it adds trials to studies
   others own while their budget has room; the budget is global (:mod:`benchmark.trial_count`), so N
   workers run it once. Trials record Optuna heartbeats: the trial of a worker that died is failed
   after the grace period and retried with its params; its claim expires and another worker takes
   the (pair, fold) over, keeping every finished trial (:func:`run_fold_shared` writes nothing once
   its claim is lost). With ``racing`` (the benchmark's, stored with it like its budget) every
   worker rebuilds the race from the stored outcomes before it claims: fold ``r`` of a raced pair is
   claimed only once round ``r - 1`` is decided, and the folds of an eliminated pair are finished as
   ``eliminated`` rows, so the workers race exactly as ``genrebench run`` does.
3. **Tracking.** The worker that scores a fold logs it to MLflow (one pair at a time, under a
   lock, so a pair gets one parent run whoever logs it).
4. **Results.** The worker that sees the last fold finished claims the assembly: it logs the
   pair summaries, writes ``results.parquet``, ``predictions.parquet``, ``splits.parquet`` and
   ``run.json`` from the stored outcomes, exactly as ``genrebench run`` does. ``genrebench
   status --write`` does the same from any machine that can read the storage.

A worker is idempotent like ``genrebench run``: start one again (or another) at any time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import platform
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from benchmark.config import BenchmarkConfig
from benchmark.data import Dataset
from benchmark.errors import ConfigError, GenrebenchError
from benchmark.execution.local import RunResult
from benchmark.execution.plan import RunOptions, make_plan, provenance, tracker_tags
from benchmark.execution.time_budget import not_reached
from benchmark.execution.workers.assembly import collect_outcomes, write_results
from benchmark.execution.workers.board import FINALIZE, BenchmarkRecord, Board, fold_key, open_board
from benchmark.execution.workers.identity import benchmark_manifest, check_identity, identity
from benchmark.execution.workers.shared_study import (
    LostClaim,
    StoredRace,
    help_study,
    run_fold_shared,
)
from benchmark.execution.workers.status import trial_counts
from benchmark.results import FoldOutcome, PairKey
from benchmark.storage import (
    default_storage_url,
    journal_path,
    mask_url,
    open_storage,
)
from benchmark.trial_count import (
    Shared,
    counted_trials,
    past_deadline,
    reap_trials,
)
from benchmark.tuning import FoldJob

__all__ = ["WorkerOptions", "WorkerSummary", "run_worker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    data_dir: str | None = None
    results_root: Path = Path("results")
    storage_url: str | None = None
    tracking_uri: str | None = None
    track: bool = True  # log to MLflow
    worker_id: str | None = None  # default: <host>-<pid>-<random>
    heartbeat_s: int = 10  # trials and claims beat this often...
    grace_s: int = 60  # ...and are taken over after this long without a beat
    poll_s: float = 2.0  # idle wait between looks for work
    help_others: bool = True  # add trials to studies other workers own
    threads: int = 1  # native (BLAS/OpenMP) threads per worker: start one worker per core
    finalize: bool = True  # assemble the results when the last fold is done
    fail_fast: bool = False


@dataclass
class WorkerSummary:
    worker: str
    benchmark: str
    storage: str  # masked
    evaluated: list[str] = field(default_factory=list)  # study names refit and scored here
    reused: list[str] = field(default_factory=list)  # outcomes found stored, only logged
    helped_trials: int = 0
    finalized: RunResult | None = None
    complete: bool = False


@contextlib.contextmanager
def _beside_run(results_dir: Path) -> Iterator[None]:
    """Workers on the default SQLite file share the results folder with each other but not
    with a ``genrebench run`` (which fails every RUNNING trial when it starts)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    with open(results_dir / ".run.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenrebenchError(
                f"a genrebench run is using {results_dir}: wait for it to end before starting "
                "workers there"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Beat(threading.Thread):
    """The worker's heartbeat: its registry row and every claim it holds."""

    def __init__(self, board: Board, bench: str, worker: str, interval: float) -> None:
        super().__init__(name="genrebench-heartbeat", daemon=True)
        self.board, self.bench, self.worker, self.interval = board, bench, worker, interval
        self.activity = "starting"
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.board.beat(self.bench, self.worker, self.activity)
            except Exception as exc:  # the storage may be briefly away: beat again later
                log.warning("heartbeat failed: %s", str(exc).splitlines()[0][:200])

    def set(self, activity: str) -> None:
        self.activity = activity
        with contextlib.suppress(Exception):
            self.board.beat(self.bench, self.worker, activity)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


@dataclass
class _Context:
    cfg: BenchmarkConfig
    opts: WorkerOptions
    me: str
    url: str
    board: Board
    shared: Shared
    record: BenchmarkRecord
    jobs: dict[str, FoldJob]
    plan: Any
    beat: _Beat
    tracker: Any
    summary: WorkerSummary
    on_outcome: Callable[[FoldOutcome], None] | None
    race: StoredRace | None = None

    @property
    def bench(self) -> str:
        return self.cfg.name


def run_worker(
    cfg: BenchmarkConfig,
    opts: WorkerOptions,
    *,
    on_joined: Callable[[WorkerSummary, int, int], None] | None = None,
    on_outcome: Callable[[FoldOutcome], None] | None = None,
) -> WorkerSummary:
    """Work on the benchmark ``cfg`` until every (pair, fold) is finished (and the results are
    assembled, by this worker or another). ``on_joined(summary, n_jobs, n_done)`` is called
    once the worker has joined; ``on_outcome`` after each fold it scores."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results_dir = Path(opts.results_root) / cfg.name
    url = opts.storage_url or default_storage_url(results_dir)
    me = opts.worker_id or f"{platform.node()}-{os.getpid()}-{secrets.token_hex(2)}"
    storage = open_storage(url, heartbeat_interval=opts.heartbeat_s, grace_period=opts.grace_s)
    board = open_board(url)
    try:
        return _work(cfg, opts, me, url, results_dir, storage, board, on_joined, on_outcome)
    finally:
        board.close()


def _work(cfg, opts, me, url, results_dir, storage, board, on_joined, on_outcome):
    where = mask_url(url)
    dataset = Dataset.open(opts.data_dir, cfg.dataset, cfg.tracks)
    prov = provenance(cfg, dataset)
    mine = identity(cfg, prov)
    record = board.benchmark(cfg.name)
    if record is not None:
        check_identity(record, mine, where)
    # before the (possibly long) planning: an unreachable tracking server fails at once
    tags_from = record.manifest["provenance"] if record is not None else prov
    tracker = _tracker(cfg, opts, tags_from, board, me, results_dir) if opts.track else None
    local = opts.storage_url is None and journal_path(url) is None
    with _beside_run(results_dir) if local else contextlib.nullcontext():
        run_opts = RunOptions(
            data_dir=opts.data_dir,
            results_root=opts.results_root,
            storage_url=url,
            fail_fast=opts.fail_fast,
        )
        plan = make_plan(cfg, dataset, run_opts, url)
        if record is None:
            record, created = board.register_benchmark(
                cfg.name, mine, benchmark_manifest(cfg, plan, prov, url)
            )
            if created:
                log.info("benchmark %s created in %s", cfg.name, where)
            else:
                check_identity(record, mine, where)
        summary = WorkerSummary(worker=me, benchmark=cfg.name, storage=where)
        budget_s = record.manifest.get("budget_s")
        deadline = record.created_at + float(budget_s) if budget_s else None
        jobs = {j.study_name: replace(j, deadline=deadline) for j in plan.jobs}
        absent = [j["study"] for j in record.manifest["jobs"] if j["study"] not in jobs]
        if absent:
            log.warning(
                "%d job(s) of the benchmark cannot run here (their family or feature set is "
                "unavailable on this machine): left to other workers",
                len(absent),
            )
        board.register_worker(
            cfg.name,
            me,
            platform.node(),
            os.getpid(),
            {"versions": prov["versions"], "git_commit": prov["git_commit"]},
        )
        beat = _Beat(board, cfg.name, me, max(1, opts.heartbeat_s))
        beat.start()
        ended = "stopped"
        try:
            alive = _alive_check(board, cfg.name, opts.grace_s)
            shared = Shared(
                worker=me,
                storage=storage,
                reap=lambda study: reap_trials(study, alive, 3 * opts.grace_s),
                poll_s=min(opts.poll_s, 1.0),
            )
            ctx = _Context(
                cfg,
                opts,
                me,
                url,
                board,
                shared,
                record,
                jobs,
                plan,
                beat,
                tracker,
                summary,
                on_outcome,
                StoredRace.of(record),
            )
            if on_joined:
                claims = board.claims(cfg.name)
                done = sum(
                    bool((c := claims.get(fold_key(j["study"]))) and c.done)
                    for j in record.manifest["jobs"]
                )
                on_joined(summary, len(record.manifest["jobs"]), done)
            # like each joblib process of `genrebench run`: every family is single-threaded,
            # and BLAS spinning on every core in N workers at once slows a fit 10-40x
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=opts.threads):
                _loop(ctx, results_dir)
            ended = "finished"
        finally:
            beat.stop()
            with contextlib.suppress(Exception):
                board.end_worker(cfg.name, me, ended)
    return summary


def _alive_check(board: Board, bench: str, grace_s: float) -> Callable[[str], bool]:
    """``alive(worker)``, from a registry snapshot refreshed at most every second."""
    cache: dict[str, Any] = {"at": 0.0, "alive": set()}

    def alive(worker: str) -> bool:
        if time.monotonic() - cache["at"] > 1.0:
            cache["alive"] = {
                w.worker
                for w in board.workers(bench)
                if w.state == "running" and w.age_s <= grace_s
            }
            cache["at"] = time.monotonic()
        return worker in cache["alive"]

    return alive


def _tracker(cfg, opts, prov, board, me, results_dir):
    """The MLflow tracker, tagged like ``genrebench run``'s (from the benchmark's provenance,
    so every worker tags alike)."""
    from benchmark.tracking import Tracker, default_tracking_uri

    uri = opts.tracking_uri or default_tracking_uri(results_dir)
    # one at a time: workers creating a fresh tracking database together collide
    with board.lock(cfg.name, "mlflow-init", me, opts.grace_s):
        return Tracker(uri, cfg.name, tracker_tags(cfg, prov), results_dir=results_dir)


def _loop(ctx: _Context, results_dir: Path) -> None:
    """Work until the benchmark is finished; ride out a storage that is briefly away (a
    database restart): what this worker held is given back, and it looks again."""
    import sqlalchemy.exc

    transient = (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)
    failing_since = None
    while True:
        try:
            if _step(ctx, results_dir):
                return
            failing_since = None
        except transient as exc:
            failing_since = failing_since or time.monotonic()
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
            if time.monotonic() - failing_since > max(300, 5 * ctx.opts.grace_s):
                lost = f"lost the storage {mask_url(ctx.url)}: {mask_url(reason)}"
                raise ConfigError(lost) from exc
            log.warning("storage error (%s); retrying", mask_url(reason))
            time.sleep(min(30, max(1, ctx.opts.poll_s * 5)))


def _step(ctx: _Context, results_dir: Path) -> bool:
    """One look for work, and the work found; True once nothing is left for this worker."""
    grace = ctx.opts.grace_s
    order = [j["study"] for j in ctx.record.manifest["jobs"]]
    claims = ctx.board.claims(ctx.bench)
    pending = [s for s in order if not ((c := claims.get(fold_key(s))) and c.done)]
    if not pending:
        ctx.summary.complete = True
        fin = claims.get(FINALIZE)
        if (fin and fin.done) or not ctx.opts.finalize:
            return True
        if ctx.board.claim(ctx.bench, FINALIZE, ctx.me, grace):
            ctx.beat.set("assembling the results")
            ctx.summary.finalized = _finalize(ctx, results_dir)
            ctx.board.finish(ctx.bench, FINALIZE, ctx.me, "done")
            return True
        ctx.beat.set("waiting for the results to be assembled")
        time.sleep(ctx.opts.poll_s)
        return False
    runnable = [s for s in pending if s in ctx.jobs]
    claimable = runnable
    if ctx.race is not None:
        ctx.race.update(claims, ctx.shared.storage)
        # a later round waits for this one; an eliminated pair's rows need no data: anyone
        claimable = [
            s
            for s in pending
            if ctx.race.may_claim(s) and (s in ctx.jobs or ctx.race.eliminated(s) is not None)
        ]
    free = [
        s
        for s in claimable
        if (c := claims.get(fold_key(s))) is None or c.worker == ctx.me or c.age_s > grace
    ]
    claimed = next(
        (s for s in free if ctx.board.claim(ctx.bench, fold_key(s), ctx.me, grace)), None
    )
    if claimed is not None:
        _own(ctx, claimed)
        return False
    if ctx.opts.help_others and _help(ctx, runnable, claims):
        return False
    ctx.beat.set("idle: waiting for other workers' folds")
    time.sleep(ctx.opts.poll_s)
    return False


def _own(ctx: _Context, study: str) -> None:
    """Tune, refit and score a claimed (pair, fold), log it, mark it finished."""
    key = fold_key(study)
    if ctx.race is not None and (row := ctx.race.eliminated(study)) is not None:
        ctx.board.finish(ctx.bench, key, ctx.me, row.status, json.dumps(row.to_json()))
        return
    job = ctx.jobs[study]
    ctx.beat.set(f"tuning {job.pair.label} fold {job.fold}")
    if past_deadline(job.deadline):  # the benchmark's budget is spent: the fold is not started
        outcome = not_reached(job)
        ctx.board.finish(ctx.bench, key, ctx.me, "skip", json.dumps(outcome.to_json()))
        return
    try:
        outcome, fresh = run_fold_shared(
            job, ctx.shared, owns=lambda: ctx.board.holds(ctx.bench, key, ctx.me)
        )
    except LostClaim as exc:
        log.warning("%s", exc)
        return
    except Exception:
        with contextlib.suppress(Exception):  # give it back now rather than after the grace
            ctx.board.release(ctx.bench, key, ctx.me)
        raise
    if fresh:
        ctx.summary.evaluated.append(study)
        log.debug("worker %s evaluated %s: %s", ctx.me, study, outcome.status)
    else:  # a worker died after storing it, before marking it finished
        ctx.summary.reused.append(study)
    ctx.beat.set(f"logging {job.pair.label} fold {job.fold}")
    _log_fold(ctx, outcome)
    payload = None if outcome.status == "done" else json.dumps(outcome.to_json(), default=str)
    ctx.board.finish(ctx.bench, key, ctx.me, outcome.status, payload)
    if ctx.on_outcome and fresh:
        ctx.on_outcome(outcome)


def _help(ctx: _Context, runnable: list[str], claims: dict[str, Any]) -> bool:
    """One trial for a study another live worker owns, if any has room. One query finds the
    studies with room; helpers try them in their own random order, so that many idle workers
    spread over the last studies instead of racing for the same trial."""
    owned = [
        s
        for s in runnable
        if (c := claims.get(fold_key(s))) is not None
        and not c.done
        and c.worker != ctx.me
        and c.age_s <= ctx.opts.grace_s
    ]
    if not owned:
        return False
    counts = trial_counts(ctx.shared.storage, ctx.url)
    n_trials = int(ctx.record.manifest["n_trials"])

    def has_room(study: str) -> bool:
        c = counts.get(study, {})
        held = sum(c.get(k, 0) for k in ("COMPLETE", "PRUNED", "RUNNING", "WAITING"))
        return held > 0 and (held < n_trials or c.get("WAITING", 0) > 0)

    candidates = [s for s in owned if has_room(s)]
    random.shuffle(candidates)
    for study in candidates:
        job = ctx.jobs[study]
        ctx.beat.activity = f"helping {job.pair.label} fold {job.fold}"  # sent with the next beat
        try:
            if help_study(job, ctx.shared):
                ctx.summary.helped_trials += 1
                return True
        except Exception as exc:  # the owner reports the study's failures
            log.debug("helping %s failed: %s", study, exc)
    return False


def _fold_split(plan: Any, pair: PairKey, fold: int) -> pd.DataFrame:
    s = plan.splits
    if s is None or s.empty:
        return pd.DataFrame()
    return s[(s["protocol"] == pair.protocol) & (s["fold"] == fold)]


def _log_fold(ctx: _Context, outcome: FoldOutcome) -> None:
    """Log one fold to MLflow under the pair's lock; a failure is a warning (the outcome is
    stored; the assembly logs every fold not logged yet)."""
    if ctx.tracker is None:
        return
    try:
        desc = ctx.record.manifest["protocols"][outcome.pair.protocol]["description"]
        with ctx.board.lock(ctx.bench, f"mlflow:{outcome.pair.slug}", ctx.me, ctx.opts.grace_s):
            ctx.tracker.log_fold(
                outcome,
                lambda: counted_trials(ctx.shared.storage, outcome.study_name),
                _fold_split(ctx.plan, outcome.pair, outcome.fold),
                protocol_description=desc,
                search_space=ctx.cfg.search_space(outcome.pair.family).to_dict(),
            )
    except Exception as exc:
        log.warning(
            "MLflow logging of %s fold %d failed (%s); it is retried when the results are "
            "assembled",
            outcome.pair.label,
            outcome.fold,
            str(exc).splitlines()[0][:200],
        )


def _finalize(ctx: _Context, results_dir: Path) -> RunResult:
    """The last step, done once: every fold logged to MLflow, pair summaries, results files."""
    outcomes, pending = collect_outcomes(ctx.shared.storage, ctx.board, ctx.record)
    assert not pending, pending
    if ctx.tracker is not None:
        for outcome in outcomes:
            if outcome.status != "skip":
                _log_fold(ctx, outcome)  # logged already: skipped by the tracker
    result = write_results(ctx.record, outcomes, results_dir, ctx.board, ctx.shared.storage)
    if ctx.tracker is not None:
        for (fs, fam, proto), rows in result.results.groupby(
            ["feature_set", "family", "protocol"], sort=True
        ):
            if (rows["status"] == "done").any():
                pair = PairKey(fs, fam, proto)
                with ctx.board.lock(ctx.bench, f"mlflow:{pair.slug}", ctx.me, ctx.opts.grace_s):
                    ctx.tracker.log_pair_summary(
                        pair,
                        rows,
                        predictions=result.predictions,
                        splits=ctx.plan.splits,
                        protocol_description=ctx.record.manifest["protocols"]
                        .get(proto, {})
                        .get("description", proto),
                    )
    log.info("worker %s assembled the results of %s in %s", ctx.me, ctx.bench, results_dir)
    return result
