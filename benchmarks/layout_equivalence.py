"""Check that a code move changed no number: run a config under every protocol at two commits.

A redesign that moves modules must leave every result as it was. This script checks out each
side (a git revision, or the working tree) into a temporary folder, runs
``genrebench run --config C --protocol P`` there (``smoke`` unless ``--config`` says another)
for every protocol with the same data,
and compares ``results.parquet`` and ``predictions.parquet`` row for row. Columns that are
timings (``tune_s``, ``fit_s``, ``predict_s``) differ between any two runs and are left out;
everything else (scores, params, trials, seeds, digests, every class probability) must be equal.

Usage::

    python benchmarks/layout_equivalence.py --before 3c66579 [--after WORKTREE] --data-dir DIR \
        [--n-jobs N] [--config quick --protocols artist_kfold,fault_filtered]

``--n-jobs`` runs both sides with that many processes (smoke's own is 1, in process), so a
change of how jobs are spread over processes is checked too.

It prints one line per (protocol, file) and exits non-zero on any difference.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

PROTOCOLS = ("stratified_kfold", "artist_kfold", "fault_filtered")
FILES = ("results.parquet", "predictions.parquet")
#: wall-clock columns: they differ between two runs of the same commit
TIMINGS = ("tune_s", "fit_s", "predict_s")
REPO = Path(__file__).resolve().parents[1]


def checkout(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (``WORKTREE``: the working tree as it is, uncommitted changes too)."""
    if rev == "WORKTREE":
        files = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
        for name in filter(None, files):
            src = REPO / name
            if src.is_file():
                (into / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, into / name)
        return into
    archive = subprocess.run(
        ["git", "archive", rev], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def checkout_sides(before: str, after: str, into: Path) -> dict[str, Path]:
    """``{"before": tree, "after": tree}``: each revision checked out in its own folder of
    ``into`` (what this script and ``engine_speed.py`` compare)."""
    sides = {}
    for side, rev in (("before", before), ("after", after)):
        (into / side).mkdir()
        sides[side] = checkout(rev, into / side)
    return sides


def run_config(
    tree: Path, protocol: str, data_dir: str, n_jobs: int | None = None, config: str = "smoke"
) -> tuple[Path, float]:
    """``genrebench run --config CONFIG --protocol P`` with ``tree``'s package first on the
    path."""
    results = tree / "results-eq"
    env = {**os.environ, "PYTHONPATH": str(tree), "GENREBENCH_DATA": data_dir}
    code = (
        "import sys, benchmark; "
        f"assert benchmark.__file__.startswith({str(tree)!r}), benchmark.__file__; "
        "from benchmark.cli import main; sys.exit(main())"
    )
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            "--config",
            config,
            "--protocol",
            protocol,
            "--results-dir",
            str(results),
            "--no-export",
            "--data-dir",
            data_dir,
            *(["--n-jobs", str(n_jobs)] if n_jobs else []),
        ],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return results / config, time.perf_counter() - start


def compare(before: Path, after: Path, name: str) -> tuple[bool, str]:
    a = pd.read_parquet(before / name)
    b = pd.read_parquet(after / name)
    drop = [c for c in TIMINGS if c in a.columns]
    a, b = a.drop(columns=drop), b.drop(columns=[c for c in drop if c in b.columns])
    if list(a.columns) != list(b.columns):
        return False, f"columns differ: {sorted(set(a.columns) ^ set(b.columns))}"
    if len(a) != len(b):
        return False, f"{len(a)} rows before, {len(b)} after"
    try:
        pd.testing.assert_frame_equal(
            a.reset_index(drop=True), b.reset_index(drop=True), check_exact=True
        )
    except AssertionError as exc:
        return False, str(exc).splitlines()[0]
    return True, f"{len(a)} rows × {len(a.columns)} columns equal"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="git revision before the move")
    ap.add_argument("--after", default="WORKTREE", help="git revision after (default: worktree)")
    ap.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--n-jobs", type=int, help="processes of both runs (default: the config's)")
    ap.add_argument("--config", default="smoke", help="the config both sides run")
    args = ap.parse_args()
    if not args.data_dir:
        ap.error("--data-dir (or $GENREBENCH_DATA) is needed")
    args.data_dir = str(Path(args.data_dir).resolve())  # the runs start in other folders
    ok = True
    with tempfile.TemporaryDirectory(prefix="genrebench-eq-") as tmp:
        sides = checkout_sides(args.before, args.after, Path(tmp))
        for protocol in args.protocols.split(","):
            out = {}
            for side, tree in sides.items():
                out[side], wall = run_config(
                    tree, protocol, args.data_dir, args.n_jobs, args.config
                )
                print(f"{protocol:17s} {side:6s} ran in {wall:5.1f} s")
            for name in FILES:
                same, why = compare(out["before"], out["after"], name)
                ok &= same
                print(f"{protocol:17s} {name:20s} {'EQUAL' if same else 'DIFFERENT'}: {why}")
    print(f"before {args.before}, after {args.after}: {'identical' if ok else 'NOT identical'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
