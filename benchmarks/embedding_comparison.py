"""Does a feature set beat the others, family by family, on the same tracks and folds?

    python benchmarks/embedding_comparison.py results/embeddings [--set embedding_musicnn]

Reads a finished benchmark's ``results.parquet`` and ``predictions.parquet`` (e.g. of
``genrebench run --config embeddings``: csv_30s, librosa_30s and embedding_musicnn on the tracks
with audio, artist-grouped folds) and prints, per protocol:

* every pair's mean fold accuracy ± sd and its pooled out-of-fold accuracy with a 95 % bootstrap
  interval over tracks;
* for each family, ``--set`` against each other feature set with that family, by the
  leaderboard's own paired tests (:func:`benchmark.stats.compare_to_baseline` with the other
  set's pair as the baseline): the mean per-fold difference, the corrected resampled t-test's p,
  the exact McNemar p on the tracks both scored, and the paired bootstrap interval of the
  difference. Holm's adjustment runs over every comparison printed for a protocol.

The protocol is printed next to every number; nothing is chosen on a test fold.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.stats import compare_to_baseline
from benchmark.stats.multiple_testing import holm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--set", default="embedding_musicnn", help="the feature set compared")
    args = parser.parse_args()
    results = pd.read_parquet(args.results_dir / "results.parquet")
    predictions = pd.read_parquet(args.results_dir / "predictions.parquet")
    done = results[results["status"] == "done"]
    if args.set not in set(done["feature_set"]):
        sys.exit(f"{args.results_dir}: no done row of feature set {args.set!r}")
    for protocol, rows in done.groupby("protocol", sort=True):
        n_tracks = predictions.loc[predictions["protocol"] == protocol, "track_id"].nunique()
        print(f"\n== protocol {protocol}: {rows['fold'].nunique()} folds, {n_tracks} tracks")
        table = compare_to_baseline(
            results[results["protocol"] == protocol],
            predictions[predictions["protocol"] == protocol],
            (args.set, str(rows["family"].iloc[0])),
        )
        print(f"{'pair':40} {'fold accuracy':>15} {'pooled OOF accuracy [95 % CI]':>31}")
        for _, r in table.sort_values(["feature_set", "family"]).iterrows():
            print(
                f"{r.feature_set + ' · ' + r.family:40} {r.accuracy:8.3f} ± {r.accuracy_std:.3f}"
                f" {r.oof_accuracy:13.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            )
        lines = []
        for family in sorted(set(rows["family"])):
            for other in sorted(set(rows["feature_set"]) - {args.set}):
                if not ((rows["feature_set"] == other) & (rows["family"] == family)).any():
                    continue
                cmp = compare_to_baseline(
                    results[results["protocol"] == protocol],
                    predictions[predictions["protocol"] == protocol],
                    (other, family),
                )
                mine = cmp[(cmp["feature_set"] == args.set) & (cmp["family"] == family)]
                if len(mine):
                    lines.append((family, other, mine.iloc[0]))
        if not lines:
            continue
        adjusted = holm(np.array([float(r.p_value) for _, _, r in lines]))
        print(f"\n{args.set} against each other set, same family ({protocol}; Holm over these):")
        print(
            f"{'family':14} {'against':26} {'Δ fold acc':>10} {'p (corr. t)':>11} {'p Holm':>7}"
            f" {'p McNemar':>9} {'Δ OOF [95 % CI]':>24}"
        )
        for (family, other, r), p_holm in zip(lines, adjusted, strict=True):
            print(
                f"{family:14} {other:26} {r.delta:+10.3f} {r.p_value:11.4f} {p_holm:7.4f}"
                f" {r.p_mcnemar:9.4f} {r.delta_oof:+8.3f} [{r.delta_ci_low:+.3f}, "
                f"{r.delta_ci_high:+.3f}]"
            )


if __name__ == "__main__":
    main()
