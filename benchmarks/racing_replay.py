"""Replay the racing tests on a finished run's folds: what each saves and what it costs.

Racing decides on folds as they come; a run that gave every pair every fold (one without
racing, such as ``genrebench run --config quick``) holds what each decision would have seen.
This replays the race fold by fold on those scores with each test of ``benchmark.execution.racing``
(the ``Race`` a run uses, nothing reimplemented) and prints, per k-fold protocol and test:

* who is eliminated, after how many folds, and the share of pair folds and of fold seconds
  (tune + refit + predict) the race would have saved;
* the eliminations the full data does not back: an eliminated pair that, on *all* folds, the
  corrected t-test (one-sided, Holm over every pair) does not show worse than the all-fold
  leader, with its all-fold rank;
* Kendall's tau between the all-fold ranking and the raced one (an eliminated pair ranked by
  the mean of the folds it had, as a raced run's leaderboard does): the ranking error racing
  itself adds.

    python benchmarks/racing_replay.py results/quick
    python benchmarks/racing_replay.py results/quick --alpha 0.1 --min-folds 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from benchmark.config import RACING_TESTS as TESTS
from benchmark.config import RacingSettings
from benchmark.execution.racing import Race
from benchmark.results import FoldOutcome, PairKey, read_table
from benchmark.stats import corrected_resampled_ttest, holm


def _complete_pairs(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Done folds of the pairs that have every fold of the protocol; the others' labels."""
    done = rows[rows["status"] == "done"]
    n_folds = rows["fold"].nunique()
    counts = done.groupby(["feature_set", "family"])["fold"].nunique()
    keep = counts[counts == n_folds].index
    every = pd.MultiIndex.from_frame(rows[["feature_set", "family"]].drop_duplicates())
    dropped = sorted(" · ".join(k) for k in every.difference(keep))
    done = done.set_index(["feature_set", "family"]).loc[keep].reset_index()
    return done, dropped


def _backed(
    table: pd.DataFrame, sizes: pd.DataFrame, exempt: tuple[str, str], alpha: float
) -> dict[tuple[str, str], float]:
    """Holm-adjusted one-sided p of every pair against the all-fold leader, on all folds."""
    means = table.mean()
    leader = means.idxmax()
    tested = [k for k in table.columns if k != leader and k != exempt]
    raw = []
    for k in tested:
        t = corrected_resampled_ttest(
            table[k].to_numpy(),
            table[leader].to_numpy(),
            sizes.loc[k, "n_train"],
            sizes.loc[k, "n_test"],
        )
        raw.append(1.0 if not np.isfinite(t.p) else (t.p / 2 if t.t < 0 else 1 - t.p / 2))
    return dict(zip(tested, holm(np.array(raw)), strict=True))


def replay(
    rows: pd.DataFrame, protocol: str, exempt: tuple[str, str], settings: RacingSettings
) -> dict[str, object]:
    """Race one protocol's complete pairs fold by fold; what it eliminated, saved and changed."""
    done, dropped = _complete_pairs(rows)
    table = done.pivot_table(index="fold", columns=["feature_set", "family"], values="accuracy")
    seconds = done.assign(s=done[["tune_s", "fit_s", "predict_s"]].sum(axis=1)).pivot_table(
        index="fold", columns=["feature_set", "family"], values="s"
    )
    sizes = done.groupby(["feature_set", "family"])[["n_train", "n_test"]].mean()
    keys = {c: PairKey(c[0], c[1], protocol) for c in table.columns}
    race = Race.of(settings, keys.values(), [protocol], [exempt], {protocol: len(table)})
    for fold in table.index:
        for column, key in keys.items():
            if key not in race.eliminated:
                acc = {"accuracy": float(table.loc[fold, column])}
                n_train, n_test = (
                    int(sizes.loc[column, "n_train"]),
                    int(sizes.loc[column, "n_test"]),
                )
                race.record(
                    FoldOutcome(key, int(fold), "done", metrics=acc, n_train=n_train, n_test=n_test)
                )
        race.settle()
    after = {(k.feature_set, k.family): e.after_folds for k, e in race.eliminated.items()}
    raced = pd.Series({c: table[c].iloc[: after.get(c, len(table))].mean() for c in table.columns})
    full = table.mean()
    saved_folds = sum(len(table) - a for a in after.values())
    saved_s = sum(float(seconds[c].iloc[a:].sum()) for c, a in after.items())
    backing = _backed(table, sizes, exempt, settings.alpha)
    rank = full.rank(ascending=False)
    return {
        "pairs": len(table.columns),
        "folds": len(table),
        "dropped": dropped,
        "eliminated": {
            c: (a, int(rank[c]), float(full[c]), backing.get(c, 1.0))
            for c, a in sorted(after.items(), key=lambda x: (x[1], x[0]))
        },
        "saved_folds": saved_folds / table.size,
        "saved_seconds": saved_s / float(seconds.to_numpy().sum()),
        "tau": float(kendalltau(full, raced[full.index]).statistic),
        "leader": " · ".join(full.idxmax()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder (results.parquet, run.json)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--min-folds", type=int, default=RacingSettings().min_folds)
    args = parser.parse_args()
    res = read_table(args.results / "results.parquet")
    config = json.loads((args.results / "run.json").read_text()).get("config", {})
    base = config.get("baseline") or {}
    exempt = (str(base.get("feature_set")), str(base.get("family")))
    pairs = res[res["feature_set"] != "ensemble"]
    for protocol, rows in sorted(pairs.groupby("protocol")):
        if rows["fold"].nunique() < args.min_folds + 1:
            continue  # a single split is never raced
        if (rows["status"] == "eliminated").any():
            print(f"{protocol}: the run raced it; replay needs every pair on every fold")
            continue
        for test in TESTS:
            out = replay(
                rows, str(protocol), exempt, RacingSettings(args.alpha, args.min_folds, test)
            )
            print(
                f"\n{protocol}, racing test {test} (alpha {args.alpha}, min folds "
                f"{args.min_folds}): {out['pairs']} pairs x {out['folds']} folds, all-fold "
                f"leader {out['leader']}"
            )
            if out["dropped"]:
                print(f"  left out (not done on every fold): {', '.join(out['dropped'])}")
            eliminated = out["eliminated"]
            assert isinstance(eliminated, dict)
            unbacked = 0
            for (fs, fam), (after, rank, acc, p_all) in eliminated.items():
                backed = p_all < args.alpha
                unbacked += not backed
                print(
                    f"  eliminated after {after:>2} folds: {fs} · {fam:<14} all-fold rank "
                    f"{rank:>2}, accuracy {acc:.3f}, all-fold Holm p {p_all:.3g}"
                    f"{'' if backed else '  <- not backed by all folds'}"
                )
            top = min((v[1] for v in eliminated.values()), default=None)
            print(
                f"  {len(eliminated)} eliminated ({unbacked} not backed by all folds; best "
                f"all-fold rank eliminated {top if top is not None else '-'}); saved "
                f"{out['saved_folds']:.0%} of pair folds, {out['saved_seconds']:.0%} of fold "
                f"seconds; Kendall tau all-fold vs raced ranking {out['tau']:.3f}"
            )


if __name__ == "__main__":
    main()
