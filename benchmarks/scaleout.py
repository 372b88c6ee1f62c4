"""What spreading a benchmark over workers costs and gains, measured on this machine.

    python benchmarks/scaleout.py [--data-dir GTZAN] [--skip-throughput] [--json out.json]

1. **Storage per trial** (ms): the trial loop's own cost around an objective that does nothing
   (3 params, 3 intermediate values), on the default SQLite file and on PostgreSQL (a throwaway
   local cluster with fsync on, like a real one): Optuna's ``Study.optimize`` as the baseline,
   the ``genrebench run`` loop (global-budget check included), and the worker loop (plus the
   worker's name on the trial, heartbeats, and the stale-trial check before each trial).
2. **MLflow per trial and per fold** (ms): :class:`benchmark.tracking.Tracker` logging toy folds
   (``benchmarks/tracking_overhead.py``) into an SQLite file, into PostgreSQL directly, and
   through an ``mlflow server`` on PostgreSQL.
3. **Trials per minute** with 1 and 2 ``genrebench worker`` processes on a small real benchmark
   (csv_30s, four families, artist-grouped 3-fold, 6 trials, no MLflow): wall time from start
   to the last fold, and the steady rate between the first trial's start and the last trial's
   end (worker start-up excluded).

Needs PostgreSQL's binaries (``tests/devcluster.py``); part 3 needs the GTZAN folder
(``--data-dir`` or ``$GENREBENCH_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parent.parent
# the sibling benchmark, and the throwaway cluster the tests use (not part of the package)
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests")]
from devcluster import LocalPostgres, free_port, start_mlflow_server  # noqa: E402
from tracking_overhead import time_log_fold  # noqa: E402

from benchmark.storage import open_storage  # noqa: E402
from benchmark.tracking import Tracker  # noqa: E402
from benchmark.trial_count import Shared, reap_trials, run_trial  # noqa: E402

THROUGHPUT_CONFIG = """\
name: scaleout
seed: 0
feature_sets: [csv_30s]
families: [logreg, svm_rbf, knn, lda]
protocols:
  artist_kfold: {n_folds: 3}
inner_folds: 3
n_trials: 6
n_jobs: 1
baseline: {feature_set: csv_30s, family: logreg}
"""


def _objective(trial: optuna.Trial) -> float:
    c = trial.suggest_float("C", 1e-3, 1e3, log=True)
    trial.suggest_categorical("kernel", ["rbf", "poly"])
    trial.suggest_int("degree", 2, 5)
    for step in range(3):
        trial.report(1 / (1 + abs(c - 1)), step)
    return 1 / (1 + abs(c - 1))


def _study(url: str, name: str, **storage_kwargs) -> tuple[optuna.Study, object]:
    storage = open_storage(url, **storage_kwargs)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    return study, storage


class _Counter:
    """SQL statements and commits an engine sends (load-independent, unlike milliseconds)."""

    def __init__(self, storage: object) -> None:
        import sqlalchemy as sa

        self.statements = self.commits = 0
        engine = getattr(storage, "engine", None)
        if engine is not None:
            sa.event.listen(engine, "before_cursor_execute", self._statement)
            sa.event.listen(engine, "commit", self._commit)

    def _statement(self, *args: object) -> None:
        self.statements += 1

    def _commit(self, *args: object) -> None:
        self.commits += 1


def _timed(label: str, n: int, storage: object, run, out: dict[str, dict[str, float]]) -> None:
    count = _Counter(storage)
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    out[label] = {
        "ms": 1000 * (time.perf_counter() - t0) / n,
        "cpu_ms": 1000 * (time.process_time() - c0) / n,
        "statements": count.statements / n,
        "commits": count.commits / n,
    }


def storage_per_trial(url: str, n: int) -> dict[str, dict[str, float]]:
    """Per trial: wall ms, CPU ms of this process, SQL statements and commits; for Optuna's
    optimize, the run loop and the worker loop."""
    out: dict[str, dict[str, float]] = {}
    study, storage = _study(url, "optimize")
    _timed("optuna_optimize", n, storage, lambda: study.optimize(_objective, n_trials=n), out)

    study2, storage2 = _study(url, "run-loop")

    def run_loop() -> None:
        for _ in range(n):
            run_trial(study2, storage2, _objective, 10**6, None)

    _timed("genrebench_run", n, storage2, run_loop, out)

    heartbeat = {} if url.startswith("journal") else {"heartbeat_interval": 10, "grace_period": 60}
    study3, storage3 = _study(url, "worker-loop", **heartbeat)
    shared = Shared("bench-worker", storage3, lambda s: reap_trials(s, lambda w: True, 600))

    def worker_loop() -> None:
        for _ in range(n):
            run_trial(study3, storage3, _objective, 10**6, shared)

    _timed("genrebench_worker", n, storage3, worker_loop, out)
    assert sum(t.state == TrialState.COMPLETE for t in study3.get_trials()) == n
    return out


def mlflow_costs(uri: str, n_trials: int, folds: int) -> dict[str, float]:
    """ms per trial child run and per fold (artifacts, metrics, tags), medians."""
    tracker = Tracker(uri, "scaleout", {"seed": "0"})
    per_trial, per_fold, cpu_trial = (
        [1000 * v for v in values] for values in time_log_fold(tracker, n_trials, folds)
    )
    return {
        "per_trial": statistics.median(per_trial),
        "per_trial_cpu": statistics.median(cpu_trial),
        "per_fold": statistics.median(per_fold),
    }


def throughput(url: str, data_dir: str, workers: int, tmp: Path) -> dict[str, float]:
    """Run the small benchmark with ``workers`` worker processes; trials per minute."""
    config = tmp / "scaleout.yaml"
    config.write_text(THROUGHPUT_CONFIG)
    t0 = time.time()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmark.cli",
                "worker",
                "--config",
                str(config),
                "--data-dir",
                data_dir,
                "--results-dir",
                str(tmp / f"r{workers}"),
                "--storage",
                url,
                "--no-tracking",
                "--name",
                f"w{i}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"a worker failed ({p.returncode})")
    wall = time.time() - t0
    storage = open_storage(url)
    trials = [
        t
        for s in storage.get_all_studies()
        for t in storage.get_all_trials(s._study_id)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    steady = (last - first).total_seconds()
    return {
        "workers": workers,
        "trials": len(trials),
        "wall_s": wall,
        "trials_per_min_wall": 60 * len(trials) / wall,
        "tuning_s": steady,
        "trials_per_min_steady": 60 * len(trials) / steady,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    parser.add_argument("--trials", type=int, default=200, help="trials per storage timing")
    parser.add_argument("--mlflow-trials", type=int, default=40)
    parser.add_argument("--mlflow-folds", type=int, default=3)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures: dict[str, object] = {"cores": os.cpu_count(), "load_before": os.getloadavg()}

    with tempfile.TemporaryDirectory(prefix="genrebench-scaleout-") as tmp_name:
        tmp = Path(tmp_name)
        pg = LocalPostgres.start(durable=True, databases=("optuna", "mlflow", "server"))
        server = None
        try:
            storage = {}
            for label, url in (
                ("sqlite", f"sqlite:///{tmp / 'optuna.db'}"),
                ("postgresql", pg.url("optuna")),
                ("journal", f"journal:///{tmp / 'optuna.log'}"),
            ):
                storage[label] = storage_per_trial(url, args.trials)
                for loop, f in storage[label].items():
                    print(
                        f"storage {label:<10} {loop:<18} {f['ms']:6.1f} ms/trial (CPU here "
                        f"{f['cpu_ms']:5.1f} ms; {f['statements']:.0f} SQL statements, "
                        f"{f['commits']:.0f} commits)",
                        flush=True,
                    )
            figures["storage_ms_per_trial"] = storage

            port = free_port()
            server = start_mlflow_server(
                pg.url("server"), tmp / "artifacts", port, tmp / "mlflow.log"
            )
            mlflow = {}
            for label, uri in (
                ("sqlite", f"sqlite:///{tmp / 'mlflow.db'}"),
                ("postgresql", pg.url("mlflow")),
                ("server", f"http://127.0.0.1:{port}"),
            ):
                mlflow[label] = mlflow_costs(uri, args.mlflow_trials, args.mlflow_folds)
                print(
                    f"mlflow {label:<10} ms: per trial {mlflow[label]['per_trial']:.1f} (CPU "
                    f"here {mlflow[label]['per_trial_cpu']:.1f}), per fold "
                    f"{mlflow[label]['per_fold']:.0f}",
                    flush=True,
                )
            figures["mlflow_ms"] = mlflow

            if not args.skip_throughput:
                if not args.data_dir:
                    raise SystemExit("--data-dir (or $GENREBENCH_DATA) is needed for part 3")
                rates = []
                for n in (1, 2):
                    pg.create_database(f"tp{n}")
                    rates.append(throughput(pg.url(f"tp{n}"), args.data_dir, n, tmp))
                    r = rates[-1]
                    print(
                        f"{n} worker(s): {r['trials']} trials in {r['wall_s']:.0f} s wall "
                        f"({r['trials_per_min_wall']:.0f}/min), "
                        f"{r['trials_per_min_steady']:.0f}/min steady",
                        flush=True,
                    )
                figures["throughput"] = rates
        finally:
            if server is not None:  # the server we started, in its own session
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            pg.stop()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
