"""Predict speed: clips per second of ``predict_files`` for 1 clip and for N clips, at
``jobs=1`` (in this process) and ``jobs=all`` (a process pool over every core), for a csv_30s
model and for an exported ensemble; and end to end, a fresh ``genrebench predict`` on one clip
(start-up, model load, extraction, inference) and the start-up alone (``predict --help``).

    python benchmarks/predict_speed.py --data-dir ../shared/datasets/gtzan \\
        --model /tmp/walk/results/quick/final_model [--csv-model DIR] [--clips 100] \\
        [--before DIR]

Without ``--csv-model`` a logistic regression is fit on Kaggle's features_30_sec.csv and saved
as a csv_30s model in a temporary folder. ``--before DIR`` names a checkout of an older
genrebench (e.g. ``git archive <commit> | tar -x -C DIR``): its ``genrebench predict`` is timed
end to end on 1 clip and on the N clips, for the same models, as the "before" figures.

The end-to-end figure is the median of ``--repeats`` (7) fresh runs, 2 s apart (one run
moves by ±0.2 s on this VM). In-process figures are wall clock after one warm-up clip in this
process (imports and numba's compilation done once); each ``jobs=all`` call starts its own
pool (its start-up is counted).
The load average is printed first: on a shared machine every figure is noisy, and pessimistic;
the CPU seconds per clip of the ``jobs=1`` run (all the work in this process) are the figure
least moved by other load, and give the rate the cores would reach on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _csv_model(data_dir: Path, folder: Path) -> Path:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from benchmark.data import Dataset
    from benchmark.inference.saved_model import save_model

    ds = Dataset.open(data_dir)
    csv = ds.features_csv(segmented=False)
    X = csv[ds.manifest.csv_feature_columns].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    model.fit(X, ds.labels_of(csv["track_id"]))
    meta = {"feature_set": "csv_30s", "classes": ds.classes, "pair": {"family": "logreg"}}
    return save_model(folder, model, meta)


def _clips(data_dir: Path, n: int) -> list[str]:
    files = sorted(str(p) for p in (data_dir / "genres_original").glob("*/*.*"))
    if not files:
        sys.exit(f"no clips under {data_dir}/genres_original")
    return files[:n]


def _timed(model: object, clips: list[str], jobs: int) -> tuple[float, float]:
    """Wall seconds, and this process's CPU seconds (all the work at ``jobs=1``)."""
    from benchmark.inference.predict import predict_files

    t0, c0 = time.perf_counter(), time.process_time()
    rows = list(predict_files(model, clips, jobs=jobs))  # type: ignore[arg-type]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    failed = sum(isinstance(r, Exception) for _, r in rows)
    if failed:
        print(f"    ({failed} of {len(rows)} file(s) failed)")
    return wall, cpu


def _cli(tree: Path, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args],
        env=env,
        cwd=tree,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = os.environ.get("GENREBENCH_DATA", str(REPO.parent / "shared/datasets/gtzan"))
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    parser.add_argument("--model", type=Path, help="an ensemble's final_model/ folder")
    parser.add_argument("--csv-model", type=Path, help="a csv_30s model (default: fit one)")
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--before", type=Path, help="a checkout of older code to time too")
    parser.add_argument(
        "--repeats", type=int, default=7, help="fresh one-clip runs (their median is the figure)"
    )
    args = parser.parse_args()

    from benchmark.inference.pool import available_cores
    from benchmark.inference.saved_model import load_model

    cores = available_cores()
    print(f"load average {os.getloadavg()[0]:.1f} on {cores} core(s) (a shared machine: noisy)")
    clips = _clips(args.data_dir, args.clips)
    tmp = Path(tempfile.mkdtemp(prefix="predict_speed_"))
    models = {"csv_30s": args.csv_model or _csv_model(args.data_dir, tmp / "csv")}
    if args.model:
        models["ensemble"] = args.model
    help_s = min(_cli(REPO, ["predict", "--help"]) for _ in range(3))
    print(f"start-up: genrebench predict --help {help_s:.2f} s (best of 3)")
    for label, folder in models.items():
        t0 = time.perf_counter()
        model = load_model(folder)
        print(f"\n{label}: {model.describe()} (loaded in {time.perf_counter() - t0:.2f} s)")
        runs = []
        for _ in range(max(1, args.repeats)):
            time.sleep(2.0)  # the last run's processes gone, the cores quiet
            runs.append(_cli(REPO, ["predict", clips[0], "--model", str(folder), "--json"]))
        print(
            "  end to end, fresh `genrebench predict` on 1 clip: "
            f"median {statistics.median(runs):.2f} s "
            f"(min {min(runs):.2f}, max {max(runs):.2f}, {len(runs)} runs)"
        )
        _timed(model, clips[:1], 1)  # warm-up: imports, numba's compilation
        for jobs in sorted({1, cores}):
            one, _ = _timed(model, clips[:1], jobs)
            many, cpu = _timed(model, clips, jobs)
            print(
                f"  jobs={jobs}: 1 clip {one:.2f} s ({1 / one:.2f} clips/s) · "
                f"{len(clips)} clips {many:.1f} s ({len(clips) / many:.2f} clips/s)"
            )
            if jobs == 1:  # everything in this process: its CPU time is the work per clip
                per_clip = cpu / len(clips)
                print(
                    f"    {per_clip:.2f} CPU s per clip: {cores / per_clip:.2f} clips/s on "
                    f"{cores} idle core(s), were the pool to scale perfectly"
                )
        if args.before:
            old_one = _cli(args.before, ["predict", clips[0], "--model", str(folder), "--json"])
            old_many = _cli(args.before, ["predict", *clips, "--model", str(folder), "--json"])
            new_many = _cli(REPO, ["predict", *clips, "--model", str(folder), "--json"])
            print(
                f"  before ({args.before}), fresh `genrebench predict`: 1 clip {old_one:.2f} s · "
                f"{len(clips)} clips {old_many:.1f} s ({len(clips) / old_many:.2f} clips/s); "
                f"now {len(clips)} clips {new_many:.1f} s ({len(clips) / new_many:.2f} clips/s)"
            )


if __name__ == "__main__":
    main()
