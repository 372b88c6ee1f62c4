"""How close are genrebench's ``librosa_30s`` features to Kaggle's ``features_30_sec.csv``?

Extracts the 57 features from every clip of ``genres_original/`` that the CSV also lists (the
shared copy: 115 FLAC clips), and prints per feature the Pearson correlation across clips with
the CSV column, the median and 95th-percentile relative difference per clip, and the share of
clips whose value matches to 0.1 %. Features below ``--min-r`` are flagged; README.md
("Audio features") explains them.

    python benchmarks/feature_correlation.py --data-dir ../shared/datasets/gtzan [--n-jobs 2]
        [--seconds 31]

The extraction goes through the feature-set cache (``--cache-dir``), so a second run is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.data import Dataset
from benchmark.features import get_feature_set


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="GTZAN folder (default: $GENREBENCH_DATA)")
    ap.add_argument("--cache-dir", default="results/cache", help="feature cache folder")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="clip length read (default 30: strictly the first 30 s; 31 reads GTZAN's whole "
        "clips, as Kaggle did)",
    )
    ap.add_argument("--min-r", type=float, default=0.99, help="flag features below this r")
    ap.add_argument("--csv", default=None, help="also write the per-feature table to this CSV")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    ds = Dataset.open(args.data_dir)
    kaggle = ds.features_csv(segmented=False).set_index("track_id")
    params = {"seconds": args.seconds} if args.seconds else {}
    fset = get_feature_set("librosa_30s", n_jobs=args.n_jobs, **params)
    t0 = time.perf_counter()
    fm = fset.load(ds, "tabular", Path(args.cache_dir))
    wall = time.perf_counter() - t0
    ours = pd.DataFrame(fm.X, index=fm.row_track, columns=fm.feature_names)
    common = ours.index.intersection(kaggle.index)
    skipped = {t: r for t, r in (fm.missing or {}).items() if r != "no audio file"}
    print(
        f"{len(common)} clips with audio and a CSV row (extraction/cache read {wall:.1f} s); "
        f"skipped: {skipped or 'none'}\n"
    )
    if len(common) < 3:
        print("too few clips to correlate")
        return 1
    a, b = ours.loc[common], kaggle.loc[common, fm.feature_names]
    rows = []
    for col in fm.feature_names:
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
        rel = np.abs(x - y) / np.maximum(np.abs(y), 1e-12)
        rows.append(
            {
                "feature": col,
                "pearson_r": r,
                "median_rel_diff": float(np.median(rel)),
                "p95_rel_diff": float(np.quantile(rel, 0.95)),
                "share_within_0.1%": float(np.mean(rel < 1e-3)),
            }
        )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 120, "display.max_rows", 100):
        print(
            table.to_string(
                index=False,
                formatters={
                    "pearson_r": "{:.6f}".format,
                    "median_rel_diff": "{:.1e}".format,
                    "p95_rel_diff": "{:.1e}".format,
                    "share_within_0.1%": "{:.0%}".format,
                },
            )
        )
    low = table[~(table["pearson_r"] >= args.min_r)]
    print(
        f"\n{len(table) - len(low)}/{len(table)} features correlate at r >= {args.min_r}; "
        f"median over features of the median relative difference: "
        f"{table['median_rel_diff'].median():.1e}"
    )
    if len(low):
        pairs = zip(low["feature"], low["pearson_r"], strict=True)
        print("below: " + ", ".join(f"{f} (r={r:.3f})" for f, r in pairs))
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
