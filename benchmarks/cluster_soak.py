"""Soak the Dask engine: a run on a loopback cluster whose workers keep dying.

    python benchmarks/cluster_soak.py [--workers 6] [--kill-every 20] [--minutes 15] [--folds 4]

A ``dask scheduler`` and ``--workers`` ``genrebench worker`` processes on 127.0.0.1 (each its
own OS process, started in an empty folder without the dataset), a journal-file Optuna storage,
and ``genrebench run --scheduler`` on a generated GTZAN-like folder, run over and over until
``--minutes`` have passed. Every ``--kill-every`` seconds (jittered) a random worker is
SIGKILLed and a fresh one started. It prints, over every run: folds done, folds rerun (a study
with a trial a dead worker left running), rows lost (a planned fold without a row) and rows
duplicated (a fold with two rows): the last two must be 0.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from devcluster import free_port  # noqa: E402
from fake_gtzan import make_fake_gtzan  # noqa: E402

from benchmark.storage import open_storage  # noqa: E402
from benchmark.tuning.trial_budget import KILLED_ATTR  # noqa: E402

KEY = ["feature_set", "family", "protocol", "fold"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GENREBENCH_DATA"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _worker(address: str, cwd: Path, n: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmark.cli", "worker", address, "--name", f"soak{n}"]
    log = cwd.parent / "workers.log"
    return _start([*cmd, "--no-dashboard", "--death-timeout", "60"], cwd, log)


def _count(results: Path, storage_url: str, expected: int) -> dict[str, int]:
    rows = pd.read_parquet(results / "results.parquet")
    rows = rows[rows["feature_set"] != "ensemble"]
    storage = open_storage(storage_url)
    rerun = 0
    for study in storage.get_all_studies():
        trials = storage.get_all_trials(study._study_id, deepcopy=False)
        rerun += any(t.system_attrs.get(KILLED_ATTR) for t in trials)
    return {
        "done": int((rows["status"] == "done").sum()),
        "rerun": rerun,
        "lost": expected - len(rows.drop_duplicates(KEY)),
        "duplicated": int(rows.duplicated(KEY).sum()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument(
        "--folds",
        type=int,
        default=4,
        help="artist folds per run (the generated folder has 8 clips a genre)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="genrebench-soak-"))
    data = make_fake_gtzan(tmp / "gtzan")
    cwd = tmp / "empty"
    cwd.mkdir()
    families = ["logreg", "lda", "knn"]
    config = tmp / "soak.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "soak",
                "seed": 1,
                "feature_sets": ["csv_30s", "spectrogram_img"],
                "families": families,
                "protocols": {"artist_kfold": {"n_folds": args.folds}},
                "inner_folds": 2,
                "n_trials": 3,
                "n_jobs": 1,
                "ensembles": False,
                "baseline": {"feature_set": "csv_30s", "family": "lda"},
            }
        )
    )
    expected = 2 * len(families) * args.folds
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # a fold may lose its worker more often than Dask's default 3 times here: that is the test
    os.environ["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "100"
    scheduler = _start(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
        + ["--port", str(port), "--no-dashboard"],
        cwd,
        tmp / "scheduler.log",
    )
    workers = [_worker(address, cwd, n) for n in range(args.workers)]
    started = n_started = len(workers)
    end = time.monotonic() + 60 * args.minutes
    totals = {"runs": 0, "done": 0, "rerun": 0, "lost": 0, "duplicated": 0, "kills": 0}
    client: subprocess.Popen | None = None
    # the clock of kills runs across runs: a run shorter than the interval is still hit
    next_kill = time.monotonic() + args.kill_every * rng.uniform(0.5, 1.5)
    try:
        while time.monotonic() < end:
            n = totals["runs"]
            results = tmp / f"results{n}"
            url = f"journal://{tmp / f'studies{n}.log'}"
            client = _start(
                [sys.executable, "-m", "benchmark.cli", "run", "--config", str(config)]
                + ["--data-dir", str(data), "--results-dir", str(results), "--storage", url]
                + ["--scheduler", address, "--no-tracking", "--no-export"],
                tmp,
                tmp / f"run{n}.log",
            )
            while client.poll() is None:
                time.sleep(0.5)
                if time.monotonic() >= next_kill:
                    i = rng.randrange(len(workers))
                    _kill(workers[i])
                    workers[i] = _worker(address, cwd, started)
                    started += 1
                    totals["kills"] += 1
                    next_kill = time.monotonic() + args.kill_every * rng.uniform(0.5, 1.5)
            if client.returncode != 0:
                print(f"run {n} failed (exit {client.returncode}): see {tmp / f'run{n}.log'}")
                return 1
            counts = _count(results / "soak", url, expected)
            totals["runs"] += 1
            for k, v in counts.items():
                totals[k] += v
            print(
                f"run {n}: {counts['done']}/{expected} folds done, {counts['rerun']} rerun, "
                f"rows lost {counts['lost']}, duplicated {counts['duplicated']}",
                flush=True,
            )
    finally:
        for proc in [*workers, scheduler, *([client] if client is not None else [])]:
            _kill(proc)
    print(
        f"{totals['runs']} runs in {args.minutes:g} min, {args.workers} workers, "
        f"{totals['kills']} killed and replaced ({started - n_started} started): "
        f"folds done {totals['done']}, folds rerun {totals['rerun']}, "
        f"rows lost {totals['lost']}, rows duplicated {totals['duplicated']}"
    )
    return 0 if totals["lost"] == totals["duplicated"] == 0 and totals["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
