"""Wall time of ``genrebench run`` on the Dask LocalCluster against the engine before it.

    python benchmarks/engine_speed.py --before main [--after WORKTREE] [--config quick] \
        [--repeats 1] --data-dir DIR

Both sides are checked out into a temporary folder (``benchmarks/layout_equivalence.py``'s
checkout); each runs ``genrebench run --config C --no-export --no-tracking`` from scratch, then
again on its finished folder (the rerun, which reads every fold back). Sides alternate within
each repeat so that a machine's changing load falls on both. Prints each wall time, the median
per side and the ratio after/before, then compares the two sides' ``results.parquet`` and
``predictions.parquet`` row for row (``layout_equivalence.compare``): a faster engine that changed
a number would not be the same benchmark.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layout_equivalence import FILES, checkout_sides, compare  # noqa: E402
from predict_speed import _cli  # noqa: E402


def timed_run(tree: Path, config: str, data_dir: str, results: Path) -> float:
    """One ``genrebench run`` of ``tree``: its wall seconds (its results must be there)."""
    wall = _cli(
        tree,
        ["run", "--config", config, "--results-dir", str(results), "--no-export"]
        + ["--no-tracking", "--data-dir", data_dir],
    )
    if not (results / config / "results.parquet").is_file():
        raise SystemExit(f"the run of {tree} wrote no results: rerun it by hand to see why")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="git revision of the old engine")
    ap.add_argument("--after", default="WORKTREE")
    ap.add_argument("--config", default="quick")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    args = ap.parse_args()
    if not args.data_dir:
        ap.error("--data-dir (or $GENREBENCH_DATA) is needed")
    data_dir = str(Path(args.data_dir).resolve())
    times: dict[tuple[str, str], list[float]] = {}
    same = True
    with tempfile.TemporaryDirectory(prefix="genrebench-speed-") as tmp:
        trees = checkout_sides(args.before, args.after, Path(tmp))
        for r in range(args.repeats):
            for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
                results = trees[side] / "results-speed"
                shutil.rmtree(results, ignore_errors=True)
                for kind in ("first", "rerun"):
                    wall = timed_run(trees[side], args.config, data_dir, results)
                    times.setdefault((side, kind), []).append(wall)
                    print(f"{side:6s} {kind:5s} repeat {r}: {wall:7.1f} s", flush=True)
        for kind in ("first", "rerun"):
            b = statistics.median(times[("before", kind)])
            a = statistics.median(times[("after", kind)])
            print(f"{kind:5s}: before {b:7.1f} s, after {a:7.1f} s, after/before {a / b:.3f}")
        for name in FILES:
            ok, why = compare(
                trees["before"] / "results-speed" / args.config,
                trees["after"] / "results-speed" / args.config,
                name,
            )
            same &= ok
            print(f"{args.config} {name:20s} {'EQUAL' if ok else 'DIFFERENT'}: {why}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
