"""How often a benchmark killed at a random instant and resumed ends as the uninterrupted run.

    python benchmarks/kill_resume.py [--n 100] [--seed 0] [--work DIR]

The small benchmark of ``tests/integration/test_kill_anywhere.py`` (``tests/fault_injection.py``:
two pairs, two artist-grouped folds, ``--n-jobs 2``, ensembles, MLflow, export) on noisy fake GTZAN
features. It is run twice uninterrupted (the two must match: one seed, one result), then, ``n``
times, in a fresh results folder: started, SIGKILLed (whole process group) at an instant drawn
uniformly over the uninterrupted run's wall time, resumed to the end, and compared with the
reference (results and predictions tables without timings, every counted trial, the MLflow
runs). Prints each instant's outcome and the count of resumes that matched.

The instants are drawn over the latest measured wall time of an uninterrupted run: an attempt
that ends before its instant is such a measurement (the machine got faster: the next instants
are drawn over its time), and it does not count as one of the ``n`` kills, so ``n`` runs are
really killed (at most ``2 n`` attempts).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fault_injection as fi  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="kill instants (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the instants")
    parser.add_argument("--work", type=Path, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill-resume-") as tmp:
        work = args.work or Path(tmp)
        data = fi.make_data(work / "gtzan")
        config = work / f"{fi.NAME}.yaml"
        config.write_text(fi.CONFIG)
        walls = []
        for name in ("reference", "reference-again"):
            t0 = time.perf_counter()
            fi.run_to_end(fi.run_command(config, data, work / name))
            walls.append(time.perf_counter() - t0)
        reference = fi.fingerprint(work / "reference" / fi.NAME)
        again = fi.differences(reference, fi.fingerprint(work / "reference-again" / fi.NAME))
        print(f"uninterrupted: {walls[0]:.1f} s, {walls[1]:.1f} s; same results: {not again}")
        rng = random.Random(args.seed)
        wall = walls[-1]
        matched = killed = attempts = 0
        while killed < args.n and attempts < 2 * args.n:
            i, attempts = attempts, attempts + 1
            at = rng.uniform(0.0, wall)
            results = work / f"cut-{i}"
            t0 = time.perf_counter()
            was_killed = fi.run_killed(
                fi.run_command(config, data, results), results / fi.NAME, fi.Trigger.after(at)
            )
            if not was_killed:  # it ran to its end: how long a whole run takes now
                wall = time.perf_counter() - t0
            try:
                fi.run_to_end(fi.run_command(config, data, results))
                diff = fi.differences(reference, fi.fingerprint(results / fi.NAME))
            except AssertionError as exc:  # the resume failed: say how
                diff = [f"resume failed: {str(exc)[-600:]}"]
            killed += was_killed
            matched += was_killed and not diff
            state = f"kill {killed}/{args.n}" if was_killed else f"ended first ({wall:.1f} s)"
            print(
                f"attempt {attempts:3d}, instant {at:5.1f} s, {state}: "
                f"{'matched' if not diff else 'DIFFERS: ' + ', '.join(diff)}",
                flush=True,
            )
            shutil.rmtree(results, ignore_errors=True)
        print(
            f"resumes matched: {matched} of {killed} killed runs "
            f"({attempts - killed} more attempts ended before their instant)"
        )


if __name__ == "__main__":
    main()
