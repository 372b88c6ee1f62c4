"""Does a feature set (or a variant) beat the others, on the same tracks and folds?

    python benchmarks/embedding_comparison.py results/embeddings [--set embedding_musicnn]
    python benchmarks/embedding_comparison.py results/embeddings \\
        --against embedding_musicnn:logreg --against librosa_30s:logreg [--markdown]

Reads a finished benchmark's ``results.parquet`` and ``predictions.parquet`` (e.g. of
``genrebench run --config embeddings``: csv_30s, librosa_30s and the musicnn embedding variants
on the tracks with audio, artist-grouped folds) and prints, per protocol:

* every pair's mean fold accuracy ± sd and its pooled out-of-fold accuracy with a 95 % bootstrap
  interval over tracks, and, for pairs whose segment vote ever differs from the mean-probability
  prediction (patch and segment sets), the pooled accuracy of the vote with its interval;
* without ``--against``: for each family, ``--set`` against each other feature set with that
  family;
* with ``--against SET:FAMILY`` (repeatable): every pair against each of those reference pairs.

Every comparison is the leaderboard's own paired test (:func:`benchmark.stats.compare_to_baseline`
with the reference as the baseline): the mean per-fold difference, the corrected resampled
t-test's p, the exact McNemar p on the tracks both scored, and the paired bootstrap interval of
the pooled difference. Holm's adjustment, of each of the two p, runs over every distinct
comparison printed for a protocol (a reference against another reference counts once).
``--markdown`` prints the same as tables ready for the docs.

The protocol is printed next to every number; nothing is chosen on a test fold.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.stats import bootstrap_ci, compare_to_baseline
from benchmark.stats.multiple_testing import holm

Pair = tuple[str, str]
#: a rendered table: its title, header and rows of cells
Table = tuple[str, list[str], list[list[str]]]


def parse_pair(text: str) -> Pair:
    """``"SET:FAMILY"`` -> ``(SET, FAMILY)``."""
    fs, sep, fam = text.partition(":")
    if not sep or not fs or not fam:
        raise argparse.ArgumentTypeError(f"expected SET:FAMILY, got {text!r}")
    return (fs, fam)


def label(pair: Pair) -> str:
    return f"{pair[0]} · {pair[1]}"


def _fmt(x: float, spec: str = ".3f") -> str:
    return "—" if x is None or not math.isfinite(float(x)) else format(float(x), spec)


def _p(x: float) -> str:
    """A p-value to three decimals, or "<0.001"."""
    return _fmt(x) if not 0 <= float(x) < 0.001 else "<0.001"


def _interval(x: float, lo: float, hi: float, sign: str = "") -> str:
    if not math.isfinite(float(x)):
        return "—"
    return f"{x:{sign}.3f} [{lo:{sign}.3f}, {hi:{sign}.3f}]"


def vote_accuracy(predictions: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Pooled out-of-fold accuracy of the segment vote (``y_vote``) with its bootstrap interval,
    for each (protocol, pair) whose vote differs from its mean-probability prediction on some
    track: for a clip-level set the two are one prediction, and repeating it would only mislead.
    Columns ``protocol, feature_set, family, vote_accuracy, vote_ci_low, vote_ci_high``."""
    cols = ["protocol", "feature_set", "family", "vote_accuracy", "vote_ci_low", "vote_ci_high"]
    if not {"y_vote", "y_pred", "y_true"} <= set(predictions.columns):
        return pd.DataFrame(columns=cols)
    rows = []
    for (proto, fs, fam), g in predictions.groupby(["protocol", "feature_set", "family"]):
        vote, pred = g["y_vote"].astype(str), g["y_pred"].astype(str)
        if (vote == pred).all():
            continue
        right = (vote == g["y_true"].astype(str)).to_numpy()
        lo, hi = bootstrap_ci(right, n_boot, 0.05, seed)
        rows.append((proto, fs, fam, float(right.mean()), lo, hi))
    return pd.DataFrame(rows, columns=cols)


def against_references(
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    references: Sequence[Pair],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Every complete pair against each reference pair: :func:`compare_to_baseline`'s rows (one
    per protocol, pair and reference, column ``reference`` added, best mean accuracy first), its
    ``p_holm`` recomputed over all distinct comparisons of a protocol (``n_holm`` of them), the
    same adjustment of the McNemar p in ``p_mcnemar_holm``, and
    the vote columns of :func:`vote_accuracy` (NaN for clip-level pairs). A reference's own row
    has ``delta`` 0 and no test; ``verdict`` is dropped, as it was Holm over one reference."""
    done = results[results["status"] == "done"]
    present = set(zip(done["feature_set"], done["family"], strict=True))
    for ref in references:
        if ref not in present:
            raise ValueError(f"reference {label(ref)} has no done row in the results")
    frames = []
    for ref in references:
        cmp = compare_to_baseline(results, predictions, ref, n_boot=n_boot, seed=seed)
        frames.append(cmp.assign(reference=label(ref)))
    table = pd.concat(frames, ignore_index=True)
    # the same two pairs compared both ways is one test: count it once in Holm
    pairs = table["feature_set"] + " · " + table["family"]
    table["_comparison"] = [
        " | ".join(sorted(two)) for two in zip(pairs, table["reference"], strict=True)
    ]
    table["p_holm"], table["p_mcnemar_holm"], table["n_holm"] = math.nan, math.nan, 0
    for proto, g in table[~table["is_baseline"]].groupby("protocol"):
        distinct = g.drop_duplicates("_comparison")
        for raw, adjusted in (("p_value", "p_holm"), ("p_mcnemar", "p_mcnemar_holm")):
            by = dict(
                zip(distinct["_comparison"], holm(distinct[raw].to_numpy(float)), strict=True)
            )
            table.loc[g.index, adjusted] = g["_comparison"].map(by).to_numpy(float)
        table.loc[table["protocol"] == proto, "n_holm"] = int(distinct["p_value"].notna().sum())
    votes = vote_accuracy(predictions, n_boot, seed)
    table = table.drop(columns=["_comparison", "verdict"]).merge(
        votes, on=["protocol", "feature_set", "family"], how="left"
    )
    # a pair's rows together (best mean fold accuracy first), its references in the order given
    table = table.sort_values(
        ["protocol", "accuracy", "feature_set", "family"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    return table.reset_index(drop=True)


def _pair_cells(r: pd.Series) -> list[str]:
    return [
        f"{r.accuracy:.3f} ± {_fmt(r.accuracy_std)}",
        _interval(r.oof_accuracy, r.ci_low, r.ci_high),
    ]


def _test_cells(r: pd.Series) -> list[str]:
    """Δ fold, p (corrected t, or McNemar on one split) and p McNemar, each with its Holm, and
    Δ pooled."""
    if r.is_baseline:
        return ["reference", "—", "—", "—"]
    mcnemar = _p(r.p_mcnemar)
    if "p_mcnemar_holm" in r:  # adjusted by against_references; the by-family mode prints raw
        mcnemar += f" ({_p(r.p_mcnemar_holm)})"
    return [
        _fmt(r.delta, "+.3f"),
        f"{_p(r.p_value)} ({_p(r.p_holm)})",
        mcnemar,
        _interval(r.delta_oof, r.delta_ci_low, r.delta_ci_high, "+"),
    ]


def reference_tables(table: pd.DataFrame, references: Sequence[Pair]) -> list[Table]:
    """One rendered table per protocol of :func:`against_references`' rows."""
    names = [label(ref) for ref in references]
    letters = [chr(ord("A") + i) for i in range(len(names))]
    has_vote = bool(table["vote_accuracy"].notna().any())
    out = []
    for proto, g in table.groupby("protocol", sort=True):
        n_folds, n_tracks = int(g["n_folds"].iloc[0]), int(g["n_tracks"].max())
        n_tests = int(g["n_holm"].iloc[0])
        title = (
            f"protocol {proto} ({n_folds} folds, {n_tracks} tracks); "
            + "; ".join(f"{x} = {n}" for x, n in zip(letters, names, strict=True))
            + f"; Holm over the {n_tests} distinct comparisons; p: corrected resampled t-test"
            + (" (McNemar on one split)" if n_folds < 2 else "")
        )
        header = [f"pair ({proto}, {n_folds} folds, {n_tracks} tracks)", "fold accuracy"]
        header += ["pooled OOF [95 % CI]"]
        header += ["vote, pooled [95 % CI]"] * has_vote
        for x in letters:
            header += [f"Δ fold vs {x}", f"p vs {x} (Holm)", f"p McNemar vs {x} (Holm)"]
            header += [f"Δ pooled vs {x} [95 % CI]"]
        rows = []
        for _, first in g.drop_duplicates(["feature_set", "family"]).iterrows():
            pair = (first.feature_set, first.family)
            mine = g[(g["feature_set"] == pair[0]) & (g["family"] == pair[1])]
            cells = [label(pair), *_pair_cells(first)]
            if has_vote:
                cells.append(_interval(first.vote_accuracy, first.vote_ci_low, first.vote_ci_high))
            for name in names:
                cells += _test_cells(mine[mine["reference"] == name].iloc[0])
            rows.append(cells)
        out.append((title, header, rows))
    return out


def render(tables: Sequence[Table], markdown: bool) -> str:
    """Tables as aligned text, or as Markdown with the pair in code and the title above."""
    parts = []
    for title, header, rows in tables:
        if markdown:
            lines = [f"{title}:", "", "| " + " | ".join(header) + " |"]
            lines.append("|" + "---|" * len(header))
            lines += [f"| `{r[0]}` | " + " | ".join(r[1:]) + " |" for r in rows]
        else:
            widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]
            lines = [f"== {title}"]
            for cells in (header, *rows):
                lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _by_family(results: pd.DataFrame, predictions: pd.DataFrame, chosen: str) -> None:
    """``chosen`` against each other feature set with the same family (the original mode)."""
    done = results[results["status"] == "done"]
    if chosen not in set(done["feature_set"]):
        sys.exit(f"no done row of feature set {chosen!r}")
    for protocol, rows in done.groupby("protocol", sort=True):
        n_tracks = predictions.loc[predictions["protocol"] == protocol, "track_id"].nunique()
        print(f"\n== protocol {protocol}: {rows['fold'].nunique()} folds, {n_tracks} tracks")
        res = results[results["protocol"] == protocol]
        pred = predictions[predictions["protocol"] == protocol]
        table = compare_to_baseline(res, pred, (chosen, str(rows["family"].iloc[0])))
        print(f"{'pair':40} {'fold accuracy':>15} {'pooled OOF accuracy [95 % CI]':>31}")
        for _, r in table.sort_values(["feature_set", "family"]).iterrows():
            fold, pooled = _pair_cells(r)
            print(f"{label((r.feature_set, r.family)):40} {fold:>15} {pooled:>31}")
        lines = []
        for family in sorted(set(rows["family"])):
            for other in sorted(set(rows["feature_set"]) - {chosen}):
                if not ((rows["feature_set"] == other) & (rows["family"] == family)).any():
                    continue
                cmp = compare_to_baseline(res, pred, (other, family))
                mine = cmp[(cmp["feature_set"] == chosen) & (cmp["family"] == family)]
                if len(mine):
                    lines.append((family, other, mine.iloc[0]))
        if not lines:
            continue
        adjusted = holm(np.array([float(r.p_value) for _, _, r in lines]))
        print(f"\n{chosen} against each other set, same family ({protocol}; Holm over these):")
        print(
            f"{'family':14} {'against':26} {'Δ fold acc':>10} {'p (corr. t)':>11} {'p Holm':>7}"
            f" {'p McNemar':>9} {'Δ OOF [95 % CI]':>24}"
        )
        for (family, other, r), p_holm in zip(lines, adjusted, strict=True):
            delta, _, p_mc, pooled = _test_cells(r)
            print(
                f"{family:14} {other:26} {delta:>10} {_fmt(r.p_value, '.4f'):>11}"
                f" {_fmt(p_holm, '.4f'):>7} {p_mc:>9} {pooled:>24}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--set", default="embedding_musicnn", help="the feature set compared")
    parser.add_argument(
        "--against",
        type=parse_pair,
        action="append",
        metavar="SET:FAMILY",
        help="compare every pair against this reference pair (repeatable)",
    )
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    args = parser.parse_args(argv)
    results = pd.read_parquet(args.results_dir / "results.parquet")
    predictions = pd.read_parquet(args.results_dir / "predictions.parquet")
    if not args.against:
        _by_family(results, predictions, args.set)
        return
    try:
        table = against_references(results, predictions, args.against, n_boot=args.n_boot)
    except ValueError as exc:
        sys.exit(f"{args.results_dir}: {exc}")
    print(render(reference_tables(table, args.against), args.markdown))
    for _, r in table[table["note"].astype(str) != ""].iterrows():
        print(f"\nnote: {label((r.feature_set, r.family))} vs {r.reference}: {r.note}")


if __name__ == "__main__":
    main()
