"""Which pair (or ensemble) of a finished benchmark becomes the final model, and why.

The winner is chosen by the cross-validated accuracy of an honest k-fold protocol
(artist-grouped first), never by the fault-filtered test split: choosing on a test split would
be tuning to it. Candidates whose features cannot be computed from audio are passed over when
the model must classify files; candidates scored on different tracks (an audio set on a partial
copy) are compared on the tracks they share, and the choice says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.ensembles import ENSEMBLE_FEATURE_SET, EnsembleSettings
from benchmark.errors import GenrebenchError
from benchmark.features import all_feature_sets
from benchmark.protocols import selection_protocols
from benchmark.results import PairKey, summarize_pairs

__all__ = ["SAME_TRACKS", "Choice", "choose_best_pair", "computable_from_audio"]


@dataclass(frozen=True)
class Choice:
    pair: PairKey
    accuracy: float
    accuracy_std: float
    folds: str
    #: better candidates passed over, each with why (e.g. its features need Kaggle's files)
    passed_over: tuple[str, ...] = ()
    #: tracks the winner scored under the selection protocol, of the tracks the protocol has
    #: (0: the results do not say)
    n_tracks: int = 0
    n_protocol_tracks: int = 0
    #: how the winner was compared when candidates cover different tracks ("" when they do not)
    compared: str = ""

    @property
    def coverage_note(self) -> str:
        """What the model card says when the winner covers fewer tracks than the protocol."""
        if not self.n_protocol_tracks or self.n_tracks >= self.n_protocol_tracks:
            return self.compared
        text = (
            f"{self.pair.feature_set} · {self.pair.family} was scored on {self.n_tracks} of the "
            f"{self.n_protocol_tracks} tracks of {self.pair.protocol} (its input covers only "
            "those)"
        )
        return f"{text}; {self.compared}" if self.compared else text


#: a candidate scoring at least this share of the tracks the best-covered one scores counts as
#: covering the same tracks (spectrogram_img lacks jazz.00054: 999 of 1000) and competes on its
#: mean accuracy; one scoring fewer (audio on a partial copy) competes on common tracks
SAME_TRACKS = EnsembleSettings().min_coverage


def computable_from_audio(
    feature_set: str, variants: Mapping[str, Mapping[str, Any]] | None = None
) -> bool:
    """Whether a pair on ``feature_set`` (or an ensemble) can classify an audio file; a feature
    variant of the config (``variants``) can when the set it is made of can."""
    if feature_set == ENSEMBLE_FEATURE_SET:
        return True
    variant = (variants or {}).get(feature_set)
    cls = all_feature_sets().get(str(variant["of"]) if variant else feature_set)
    return cls is not None and cls.audio_counterpart() is not None


def _correct(preds: pd.DataFrame) -> pd.DataFrame:
    """``fold, track_id, correct`` of one candidate's outer test predictions."""
    if "correct" in preds.columns:
        correct = preds["correct"].astype(bool)
    else:
        correct = preds["y_true"].astype(str) == preds["y_pred"].astype(str)
    return preds[["fold", "track_id"]].assign(correct=correct.to_numpy())


def _protocol_tracks(results: pd.DataFrame, protocol: str) -> int:
    """Tracks in ``protocol``'s test parts, from any done row's ``n_test / coverage`` summed
    over its folds (the largest over pairs); 0 when the rows do not say."""
    rows = results[(results["protocol"] == protocol) & (results["status"] == "done")]
    if rows.empty or not {"n_test", "coverage"} <= set(rows.columns):
        return 0
    part = pd.to_numeric(rows["n_test"], errors="coerce") / pd.to_numeric(
        rows["coverage"], errors="coerce"
    ).replace(0, np.nan)
    per_pair = part.groupby([rows["feature_set"], rows["family"]]).sum(min_count=1)
    return int(round(float(per_pair.max()))) if per_pair.notna().any() else 0


def _on_common_tracks(
    candidates: pd.DataFrame, preds: pd.DataFrame, protocol: str
) -> tuple[pd.Series, str, list[str]]:
    """The winner among ``candidates`` (done rows, best mean accuracy first) when they cover
    different tracks: the best of those covering the same tracks as the best-covered one
    (:data:`SAME_TRACKS`) leads; a candidate covering fewer wins only if it beats the leader on
    the tracks both scored, and then the one that beats it by the most. Returns the winner,
    how it was compared, and the candidates passed over for it."""
    p = preds[preds["protocol"] == protocol]
    correct = {
        (fs, fam): _correct(g) for (fs, fam), g in p.groupby(["feature_set", "family"], sort=False)
    }
    sizes = {
        i: len(correct.get((r["feature_set"], r["family"]), ())) for i, r in candidates.iterrows()
    }
    most = max(sizes.values(), default=0)
    if most == 0 or min(sizes.values()) >= SAME_TRACKS * most:
        return candidates.iloc[0], "", []
    full = [i for i in candidates.index if sizes[i] >= SAME_TRACKS * most]
    leader = candidates.loc[full[0]]
    lead = correct[(leader["feature_set"], leader["family"])]
    lead_label = f"{leader['feature_set']} · {leader['family']}"
    beaters: list[tuple[float, Any, str]] = []  # (margin, row index, how)
    passed: list[str] = []
    for i, r in candidates.iterrows():
        if i in full or sizes[i] == 0:
            continue
        both = correct[(r["feature_set"], r["family"])].merge(
            lead, on=["fold", "track_id"], suffixes=("", "_lead")
        )
        if both.empty:
            continue
        own, theirs = float(both["correct"].mean()), float(both["correct_lead"].mean())
        how = f"on the {len(both)} tracks both scored: {own:.3f} vs {lead_label} {theirs:.3f}"
        label = f"{r['feature_set']} · {r['family']} ({r['accuracy']:.3f} on {sizes[i]} tracks)"
        if own > theirs:
            beaters.append((own - theirs, i, how))
        elif r["accuracy"] > leader["accuracy"]:
            passed.append(f"{label}: not better {how}")
    if not beaters:
        return leader, "compared with the pairs on fewer tracks on their common tracks", passed
    _, winner, how = max(beaters, key=lambda b: b[0])  # the first of equal margins
    for _, i, other in beaters:
        if i != winner:
            r = candidates.loc[i]
            passed.append(f"{r['feature_set']} · {r['family']}: beats the leader by less {other}")
    return candidates.loc[winner], f"chosen over {lead_label} {how}", passed


def choose_best_pair(
    results: pd.DataFrame,
    baseline: dict[str, str],
    *,
    family: str | None = None,
    feature_set: str | None = None,
    predictable: bool = False,
    feature_variants: Mapping[str, Mapping[str, Any]] | None = None,
    predictions: pd.DataFrame | None = None,
) -> Choice:
    """The pair (or ensemble) with the highest mean accuracy under the first available
    selection protocol, among those done on every fold (optionally one family or feature
    set). With ``predictable``, candidates whose features cannot be computed from audio are
    passed over, and the choice says which and why (``feature_variants``: the config's, whose
    names are feature sets too). With ``predictions`` (the outer test predictions), candidates
    that scored different tracks (an audio set on a partial copy) are compared on the tracks
    they share (:func:`_on_common_tracks`), never by means over different tracks."""
    summary = summarize_pairs(results, baseline)
    if summary.empty:
        raise GenrebenchError("the results hold no pair to choose from")
    order = selection_protocols()
    passed: list[str] = []
    for protocol in order:
        rows = summary[(summary["protocol"] == protocol) & (summary["status"] == "done")]
        if family:
            rows = rows[rows["family"] == family]
        if feature_set:
            rows = rows[rows["feature_set"] == feature_set]
        keep = []
        for i, best in rows.sort_values("accuracy", ascending=False, kind="stable").iterrows():
            label = f"{best['feature_set']} · {best['family']} ({best['accuracy']:.3f})"
            if predictable and not computable_from_audio(
                str(best["feature_set"]), feature_variants
            ):
                passed.append(f"{label}: feature set not computable from audio")
                continue
            keep.append(i)
        if not keep:
            continue
        candidates = rows.loc[keep]
        compared, fewer = "", list[str]()
        best = candidates.iloc[0]
        if predictions is not None and len(predictions):
            best, compared, fewer = _on_common_tracks(candidates, predictions, protocol)
        n_tracks = 0
        if predictions is not None and len(predictions):
            mine = predictions[
                (predictions["protocol"] == protocol)
                & (predictions["feature_set"] == best["feature_set"])
                & (predictions["family"] == best["family"])
            ]
            n_tracks = int(len(mine))
        return Choice(
            PairKey(best["feature_set"], best["family"], protocol),
            float(best["accuracy"]),
            float(best["accuracy_std"]),
            str(best["folds"]),
            tuple(passed + fewer),
            n_tracks,
            _protocol_tracks(results, protocol),
            compared,
        )
    raise GenrebenchError(
        "no pair is done under a k-fold protocol "
        f"({' or '.join(order)}){' that can classify audio' if passed else ''}; the final "
        "model is chosen by cross-validation, never by the fault-filtered test split: run a "
        "config with artist_kfold"
    )
