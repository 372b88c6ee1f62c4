"""What a rerun of a finished benchmark costs, against its first run, and where the time goes.

    python benchmarks/rerun_speed.py --config quick --data-dir PATH [--work DIR] [--reuse]

Runs ``genrebench run --config C`` in a fresh results folder (the first run, timed end to end as a
user sees it: start-up, folds, ensembles, leaderboard, export and MLflow registration), then runs
the same command again on the finished folder (the rerun) under cProfile, and prints both wall
times, their ratio, and the rerun's time by phase: the cumulative time of the functions that make
up a run, and the imports of the heavy packages. ``--reuse`` skips the first run when ``--work``
already holds one finished by this script (its wall time is read from ``first_run.json``).

A rerun must stay safe while it is fast: it still checks the results' code hash and config, the
data checksum and every fold's outcome file, and it leaves MLflow's runs as they are. The phase
table says what each of those checks costs.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (phase, file suffix, function name) of the functions whose cumulative time is reported
PHASES = [
    ("open the dataset", "data/dataset.py", "open"),
    ("provenance (code hash, data checksum)", "execution/plan.py", "provenance"),
    ("plan (features, splits)", "execution/plan.py", "make_plan"),
    ("open the Optuna storage", "benchmark/storage.py", "open_storage"),
    ("MLflow tracker start", "tracking/tracker.py", "__init__"),
    ("schedule (finished folds read back)", "execution/schedule.py", "run"),
    ("results files", "execution/outputs.py", "write_outcome_files"),
    ("ensemble stage", "ensembles/_stage.py", "run_ensemble_stage"),
    ("MLflow pair summaries", "tracking/tracker.py", "log_pair_summary"),
    ("leaderboard", "cli/_presentation.py", "write_leaderboard"),
    ("final model export", "benchmark/final_model/export.py", "export_from_results"),
    ("MLflow model registration", "benchmark/inference/serving.py", "log_final_model"),
]
#: packages whose import time is reported (their top-level ``__init__``)
PACKAGES = ["sklearn", "scipy", "pandas", "optuna", "mlflow", "lightgbm", "keras", "jax", "rich"]


def _run(cmd: list[str], cwd: Path, log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return wall


def _phase_times(prof: Path) -> list[tuple[str, float]]:
    stats = pstats.Stats(str(prof)).stats  # type: ignore[attr-defined]
    out = []
    for label, suffix, name in PHASES:
        total = sum(
            v[3]
            for (file, _line, func), v in stats.items()
            if func == name and file.endswith(suffix)
        )
        out.append((label, total))
    for pkg in PACKAGES:
        total = max(
            (
                v[3]
                for (file, _line, func), v in stats.items()
                if func == "<module>" and file.endswith(f"/{pkg}/__init__.py")
            ),
            default=0.0,
        )
        out.append((f"import {pkg}", total))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="quick")
    parser.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    parser.add_argument("--work", type=Path, help="folder for the runs (default: temporary)")
    parser.add_argument("--reuse", action="store_true", help="reuse --work's finished first run")
    args = parser.parse_args()
    if not args.data_dir:
        sys.exit("give --data-dir (or set GENREBENCH_DATA)")
    work = args.work or Path(tempfile.mkdtemp(prefix="rerun-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "benchmark.cli", "run", "--config", args.config]
    base += ["--data-dir", str(args.data_dir)]
    record = work / "first_run.json"
    if args.reuse and record.is_file():
        first = float(json.loads(record.read_text())["wall_s"])
    else:
        first = _run(base, work, work / "first.log")
        record.write_text(json.dumps({"config": args.config, "wall_s": first}))
    prof = work / "rerun.prof"
    rerun = _run(
        [sys.executable, "-m", "cProfile", "-o", str(prof), *base[1:]], work, work / "rerun.log"
    )
    plain = _run(base, work, work / "rerun-plain.log")
    print(f"config {args.config}; data {args.data_dir}; work folder {work}")
    print(f"first run       {first:8.1f} s")
    print(f"rerun           {plain:8.1f} s  ({100 * plain / first:.1f} % of the first run)")
    print(f"rerun, profiled {rerun:8.1f} s")
    print(f"\n{'phase of the profiled rerun':44} {'seconds':>8}")
    for label, seconds in _phase_times(prof):
        print(f"{label:44} {seconds:8.2f}")
    print("(cumulative times overlap: an import inside a phase counts in both)")


if __name__ == "__main__":
    main()
