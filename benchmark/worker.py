"""``genrebench worker``: any number of processes, on any machines, finish one benchmark together.

Every worker opens the same storage URL (PostgreSQL for many machines, the SQLite file for
several processes on one, a journal file on a shared file system) and plans the benchmark from
its own copy of the data. Then:

1. **Identity.** The first worker stores the benchmark's record (config digest, data checksum,
   code version, and a manifest of the jobs, skipped pairs and splits); a later worker whose
   identity differs refuses to join, with one line saying what differs.
2. **Work.** A (pair, fold) is *claimed* (:mod:`benchmark.claims`) by one worker, which tunes
   its study, refits the best params, scores the outer test part once and stores the outcome
   with the study. A worker that finds nothing to claim *helps*: it adds trials to studies
   others own while their budget has room; the budget is global
   (:mod:`benchmark.trial_budget`), so N workers run it once. Trials record Optuna heartbeats:
   the trial of a worker that died is failed after the grace period and retried with its
   params; its claim expires and another worker takes the (pair, fold) over, keeping every
   finished trial (:func:`run_fold_shared` writes nothing once its claim is lost).
   With ``racing`` (the benchmark's, stored with it like its budget) every worker rebuilds the
   race from the stored outcomes before it claims: fold ``r`` of a raced pair is claimed only
   once round ``r - 1`` is decided, and the folds of an eliminated pair are finished as
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
import hashlib
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

import benchmark
from benchmark.budget import not_reached
from benchmark.claims import BenchmarkRecord, Board, open_board
from benchmark.config import BenchmarkConfig
from benchmark.data import Dataset
from benchmark.ensembles import EnsembleSettings, run_ensemble_stage
from benchmark.errors import ConfigError, GenrebenchError
from benchmark.paths import manifests_dir, search_spaces_dir
from benchmark.racing import Race, RacingSettings, folds_per_protocol
from benchmark.results import FoldOutcome, PairKey, write_table
from benchmark.runner import (
    RunOptions,
    RunResult,
    make_plan,
    provenance,
    tracker_tags,
    write_outcome_files,
)
from benchmark.search_space import SearchSpace, load_search_space
from benchmark.storage import (
    default_storage_url,
    journal_path,
    mask_url,
    open_storage,
    why_unusable,
)
from benchmark.trial_budget import (
    Shared,
    budget_of,
    counted_trials,
    is_counted,
    past_deadline,
    reap_trials,
    run_trial,
)
from benchmark.tuning import (
    OUTCOME_ATTR,
    FoldJob,
    evaluate_fold,
    inner_cv_objective,
    load_study,
)

__all__ = [
    "LostClaim",
    "Progress",
    "RefusedToJoin",
    "WorkerOptions",
    "WorkerSummary",
    "assemble_results",
    "code_version",
    "help_study",
    "progress",
    "run_fold_shared",
    "run_worker",
]

log = logging.getLogger(__name__)

FINALIZE = "finalize"
#: identity fields a joining worker must match, and how a refusal names them
IDENTITY_FIELDS = {
    "config_digest": "config digest",
    "data_checksum": "data checksum",
    "code_version": "code version",
}
#: the code whose change changes results (the code version hashes these)
RESULT_CODE = (
    "_audio_kernels.py",
    "audio.py",
    "config.py",
    "data.py",
    "racing.py",
    "results.py",
    "sampling.py",
    "scoring.py",
    "search_space.py",
    "stats.py",
    "trial_budget.py",
    "tuning.py",
    "features",
    "models",
    "protocols",
)


class RefusedToJoin(GenrebenchError):
    """This worker's data, code or config differs from the benchmark's."""


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


def code_version() -> str:
    """The package version plus a digest of the code and files that change results (the
    harness, families, feature sets, search spaces, dataset manifests)."""
    root = Path(benchmark.__file__).resolve().parent
    files: list[tuple[str, Path]] = []
    for name in RESULT_CODE:
        path = root / name
        if not path.exists():  # a module moved or renamed: its code would go unhashed
            raise RuntimeError(f"worker.RESULT_CODE names {name!r}, not in {root}")
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files += [(f"benchmark/{p.relative_to(root)}", p) for p in found if p.is_file()]
    for folder in (search_spaces_dir(), manifests_dir()):
        files += [(f"{folder.name}/{p.name}", p) for p in sorted(folder.glob("*")) if p.is_file()]
    h = hashlib.sha256()
    for rel, path in files:
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{benchmark.__version__}+{h.hexdigest()[:12]}"


def identity(cfg: BenchmarkConfig, prov: dict[str, Any]) -> dict[str, Any]:
    return {
        "config_digest": cfg.digest(),
        "data_checksum": prov["data_checksum"],
        "code_version": code_version(),
    }


def _check_identity(record: BenchmarkRecord, mine: dict[str, Any], where: str) -> None:
    for key, what in IDENTITY_FIELDS.items():
        theirs = record.identity.get(key)
        if theirs != mine[key]:
            prov = record.manifest.get("provenance", {})
            started = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%d %H:%M")
            raise RefusedToJoin(
                f"refusing to join benchmark {record.name!r} in {where}: its {what} is {theirs}, "
                f"this worker's is {mine[key]} (benchmark started on {prov.get('host', '?')} at "
                f"{started} UTC); start every worker with the same data, code and config, or "
                "use another --storage"
            )


def _fold_key(study: str) -> str:
    return f"fold:{study}"


def _manifest(cfg: BenchmarkConfig, plan: Any, prov: dict[str, Any], url: str) -> dict[str, Any]:
    return {
        "provenance": prov,
        "storage": mask_url(url),
        "n_trials": cfg.n_trials,
        # the benchmark's wall-clock budget (the first worker's): every worker stops there
        "budget_s": cfg.budget_seconds(),
        # and its race (the first worker's: racing is not in the digest), raced protocols
        "racing": cfg.racing,
        "raced": [n for n, p in plan.protocols.items() if p.kind == "k-fold"],
        "baseline": [cfg.baseline["feature_set"], cfg.baseline["family"]],
        "jobs": [
            {"study": j.study_name, "pair": list(_pair_tuple(j.pair)), "fold": j.fold}
            for j in plan.jobs
        ],
        "fixed_families": sorted(
            {j.pair.family for j in plan.jobs if not load_search_space(j.pair.family).params}
        ),
        "skipped": [o.to_json() for o in plan.skipped],
        "splits": plan.splits.to_dict(orient="list"),
        "protocols": {
            n: p.to_dict() | {"description": p.description} for n, p in plan.protocols.items()
        },
        "context": {
            "benchmark": cfg.name,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
            "config_digest": prov["config_digest"],
            "data_checksum": prov["data_checksum"],
        },
    }


def _pair_tuple(pair: PairKey) -> tuple[str, str, str]:
    return (pair.feature_set, pair.family, pair.protocol)


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
    race: _StoredRace | None = None

    @property
    def bench(self) -> str:
        return self.cfg.name


@dataclass
class _StoredRace:
    """The benchmark's race as the stored outcomes decide it. Every worker feeds the same
    finished folds to the same :class:`~benchmark.racing.Race`, which decides a round only once
    every racing pair has finished it, so all workers agree on who is eliminated and when."""

    race: Race
    folds: dict[str, tuple[PairKey, int]]  # study -> its (pair, fold), every job of the benchmark
    recorded: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, record: BenchmarkRecord) -> _StoredRace | None:
        m = record.manifest
        settings = RacingSettings.from_config(m.get("racing"), f"benchmark {record.name!r}")
        if settings is None:
            return None
        folds = {j["study"]: (PairKey(*j["pair"]), int(j["fold"])) for j in m["jobs"]}
        pairs = {pair for pair, _ in folds.values()}
        rounds = folds_per_protocol(folds.values())
        race = Race.of(settings, pairs, m["raced"], [tuple(m["baseline"])], rounds)
        return cls(race, folds)

    def update(self, claims: dict[str, Any], storage: Any) -> None:
        """Record the folds finished since the last look (their outcomes are stored for good)."""
        for study in self.folds.keys() - self.recorded:
            claim = claims.get(_fold_key(study))
            if claim is None or not claim.done:
                continue
            if claim.payload:
                outcome = FoldOutcome.from_json(json.loads(claim.payload))
            else:
                attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(study))
                outcome = FoldOutcome.from_json(attrs[OUTCOME_ATTR])
            self.race.record(outcome)
            self.recorded.add(study)
        self.race.settle()  # logs each elimination

    def may_claim(self, study: str) -> bool:
        pair, fold = self.folds[study]
        return pair in self.race.eliminated or self.race.may_start(pair, fold)

    def eliminated(self, study: str) -> FoldOutcome | None:
        pair, fold = self.folds[study]
        e = self.race.eliminated.get(pair)
        return None if e is None else e.outcome(fold)


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
    board = _open_board(url)
    try:
        return _work(cfg, opts, me, url, results_dir, storage, board, on_joined, on_outcome)
    finally:
        board.close()


def _work(cfg, opts, me, url, results_dir, storage, board, on_joined, on_outcome):
    where = mask_url(url)
    dataset = Dataset.open(opts.data_dir, cfg.dataset)
    prov = provenance(cfg, dataset)
    mine = identity(cfg, prov)
    record = board.benchmark(cfg.name)
    if record is not None:
        _check_identity(record, mine, where)
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
                cfg.name, mine, _manifest(cfg, plan, prov, url)
            )
            if created:
                log.info("benchmark %s created in %s", cfg.name, where)
            else:
                _check_identity(record, mine, where)
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
                _StoredRace.of(record),
            )
            if on_joined:
                claims = board.claims(cfg.name)
                done = sum(
                    bool((c := claims.get(_fold_key(j["study"]))) and c.done)
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


def _open_board(url: str) -> Board:
    try:
        return open_board(url)
    except GenrebenchError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"cannot open the coordination tables in {mask_url(url)}: {why_unusable(exc, url)}"
        ) from exc


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
    pending = [s for s in order if not ((c := claims.get(_fold_key(s))) and c.done)]
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
        if (c := claims.get(_fold_key(s))) is None or c.worker == ctx.me or c.age_s > grace
    ]
    claimed = next(
        (s for s in free if ctx.board.claim(ctx.bench, _fold_key(s), ctx.me, grace)), None
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
    key = _fold_key(study)
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
        if (c := claims.get(_fold_key(s))) is not None
        and not c.done
        and c.worker != ctx.me
        and c.age_s <= ctx.opts.grace_s
    ]
    if not owned:
        return False
    counts = _trial_counts(ctx.shared.storage, ctx.url)
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


class LostClaim(GenrebenchError):
    """Another worker took this (pair, fold) over (ours had expired): nothing is written."""


def run_fold_shared(
    job: FoldJob, shared: Shared, owns: Callable[[], bool] | None = None
) -> tuple[FoldOutcome, bool]:
    """:func:`benchmark.tuning.run_fold` for a worker that claimed the (pair, fold): tunes with
    the other workers' help and writes the outcome only while ``owns()`` (its claim) holds;
    raises :class:`LostClaim` otherwise. Returns the outcome and whether it was computed here
    (else it was found stored)."""
    import sqlalchemy.exc

    def checkpoint(when: str) -> None:
        if owns is not None and not owns():
            raise LostClaim(f"{job.study_name}: claim taken over {when}")

    # not the fold's fault: another worker (or this one, later) does it again
    not_the_fold = (
        LostClaim,
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
    )
    return evaluate_fold(job, shared, checkpoint, not_the_fold=not_the_fold)


def help_study(job: FoldJob, shared: Shared) -> bool:
    """Run one trial of a study another worker owns, if its budget has room; False if not.

    The helper samples with its own seed (a second sampler seeded like the owner's would
    propose the owner's params again); the owner alone refits and scores the fold.
    """
    if job.n_trials == 0 or SearchSpace.from_dict(job.space, source=job.pair.family).fixed:
        return False
    study = load_study(job, shared.storage, salt=("helper", shared.worker))
    if study.user_attrs.get(OUTCOME_ATTR) is not None:
        return False
    trials = study.get_trials(deepcopy=False)
    budget = budget_of(trials, job.n_trials)
    if not trials or budget.done:  # not started by its owner yet (it enqueues the defaults)
        return False
    if budget.full:
        return False
    space = SearchSpace.from_dict(job.space, source=f"{job.pair.family} (stored)")
    run_trial(study, shared.storage, inner_cv_objective(job, space), job.n_trials, shared)
    return True


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
                search_space=load_search_space(outcome.pair.family).to_dict(),
            )
    except Exception as exc:
        log.warning(
            "MLflow logging of %s fold %d failed (%s); it is retried when the results are "
            "assembled",
            outcome.pair.label,
            outcome.fold,
            str(exc).splitlines()[0][:200],
        )


# --------------------------------------------------------------------------------------------
# results from the storage
# --------------------------------------------------------------------------------------------


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
        claim = claims.get(_fold_key(job["study"]))
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
    board = _open_board(url)
    try:
        record = _record(board, name, url)
        outcomes, pending = collect_outcomes(storage, board, record)
        if pending and not allow_partial:
            raise GenrebenchError(
                f"benchmark {record.name!r} has {len(pending)} fold(s) still pending: wait for "
                "the workers, or pass --partial for a table of the finished folds"
            )
        result = _write_results(record, outcomes, Path(results_root) / record.name, board, storage)
    finally:
        board.close()
    return result, len(pending)


def _record(board: Board, name: str | None, url: str) -> BenchmarkRecord:
    names = board.benchmarks()
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise GenrebenchError(
                f"{mask_url(url)} holds {len(names)} benchmarks ({listed}): pass --config NAME"
            )
        name = names[0]
    record = board.benchmark(name)
    if record is None:
        raise GenrebenchError(
            f"no benchmark {name!r} in {mask_url(url)} (it holds: {', '.join(names) or 'none'}); "
            "start a `genrebench worker` on it first"
        )
    return record


def _write_results(
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


def _finalize(ctx: _Context, results_dir: Path) -> RunResult:
    """The last step, done once: every fold logged to MLflow, pair summaries, results files."""
    outcomes, pending = collect_outcomes(ctx.shared.storage, ctx.board, ctx.record)
    assert not pending, pending
    if ctx.tracker is not None:
        for outcome in outcomes:
            if outcome.status != "skip":
                _log_fold(ctx, outcome)  # logged already: skipped by the tracker
    result = _write_results(ctx.record, outcomes, results_dir, ctx.board, ctx.shared.storage)
    if ctx.tracker is not None:
        for (fs, fam, proto), rows in result.results.groupby(
            ["feature_set", "family", "protocol"], sort=True
        ):
            if (rows["status"] == "done").any():
                pair = PairKey(fs, fam, proto)
                with ctx.board.lock(ctx.bench, f"mlflow:{pair.slug}", ctx.me, ctx.opts.grace_s):
                    ctx.tracker.log_pair_summary(pair, rows)
    log.info("worker %s assembled the results of %s in %s", ctx.me, ctx.bench, results_dir)
    return result


# --------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------


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


def _trial_counts(storage: Any, url: str) -> dict[str, dict[str, int]]:
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


def _parse_study_name(study: str) -> tuple[str, tuple[str, str, str], int, str] | None:
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
        parsed = _parse_study_name(s.study_name)
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
    counts = _trial_counts(storage, url)
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in by_run[name]:
        parsed = _parse_study_name(s.study_name)
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
    board = _open_board(url)
    try:
        names = board.benchmarks()
        if name not in names and (name is not None or not names):
            by_run = _run_benchmarks(storage)
            if (name is None and by_run) or name in by_run:
                return _run_progress(storage, url, name, by_run, grace_s)
        record = _record(board, name, url)
        claims = board.claims(record.name)
        workers = board.workers(record.name)
        counts = _trial_counts(storage, url)
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
        claim = claims.get(_fold_key(job["study"]))
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
