"""Racing across pairs on the k-fold protocols: stop giving folds to pairs shown worse.

After each round of outer folds (fold ``r`` of every pair still racing), a pair whose per-fold
accuracies over folds ``0..r`` are worse than the current leader's at ``alpha`` stops receiving
folds; its remaining folds become ``eliminated`` rows that say after how many folds, against
which leader and with which p. Two tests (``test:``), both one-sided and Holm-adjusted over the
pairs tested in that round:

* ``ttest`` (default): the corrected resampled t-test of each pair against the leader (the best
  mean). It allows for the folds' shared training rows, so it decides late and rarely wrongly;
* ``friedman``: the Friedman test over all racing pairs (folds as blocks), and once it rejects,
  Conover's post-hoc comparison of each pair's rank sum with the leader's (the best rank sum),
  as irace races configurations. It pools the rank noise of every pair and decides sooner, but
  treats the folds as independent: ``benchmarks/racing_replay.py`` measures what each costs.

Decisions are made only at round boundaries (from ``min_folds`` up to the last fold, after which
nothing is left to save), on the same folds for every pair, so a run is as deterministic as its
folds. The fault-filtered test is a single split: single-split protocols are never raced,
and nothing here ever reads them. The baseline pair is never eliminated (every pair is compared
with it on every fold).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from benchmark.config import RACING_TESTS, RacingSettings
from benchmark.results import FoldOutcome, PairKey
from benchmark.stats import corrected_resampled_ttest, friedman_conover, holm

__all__ = ["Elimination", "Race", "folds_per_protocol"]

log = logging.getLogger(__name__)


def folds_per_protocol(folds: Iterable[tuple[PairKey, int]]) -> dict[str, int]:
    """How many outer folds each protocol has, from its (pair, fold) jobs: the race's rounds."""
    out: dict[str, int] = {}
    for pair, fold in folds:
        out[pair.protocol] = max(out.get(pair.protocol, 0), fold + 1)
    return out


@dataclass(frozen=True)
class Elimination:
    pair: PairKey
    after_folds: int
    leader: PairKey
    p_holm: float
    test: str = "ttest"
    p_friedman: float | None = None  # the omnibus test's p, for test="friedman"

    @property
    def message(self) -> str:
        omnibus = "" if self.p_friedman is None else f"Friedman p = {self.p_friedman:.3g}; "
        return (
            f"eliminated after {self.after_folds} folds: worse than "
            f"{self.leader.feature_set} · {self.leader.family} "
            f"({omnibus}{RACING_TESTS[self.test]}, Holm p = {self.p_holm:.3g})"
        )

    def outcome(self, fold: int) -> FoldOutcome:
        return FoldOutcome(self.pair, fold, "eliminated", self.message)


@dataclass
class Race:
    """The racing state of one run: per k-fold protocol, the pairs and their fold results."""

    settings: RacingSettings
    #: raced protocol -> pairs racing in it
    pairs: dict[str, set[PairKey]]
    exempt: frozenset[tuple[str, str]] = frozenset()
    #: raced protocol -> its folds: after the last round nothing is left to save, so nothing
    #: is decided (no pair is called eliminated with every fold done)
    n_folds: Mapping[str, int] = field(default_factory=dict)
    _scores: dict[PairKey, dict[int, tuple[float, int, int]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    _finished: dict[PairKey, set[int]] = field(default_factory=lambda: defaultdict(set))
    _decided: dict[str, int] = field(default_factory=dict)  # protocol -> last decided round
    eliminated: dict[PairKey, Elimination] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        settings: RacingSettings,
        keys: Iterable[PairKey],
        raced_protocols: Iterable[str],
        exempt: Iterable[tuple[str, str]] = (),
        n_folds: Mapping[str, int] | None = None,
    ) -> Race:
        raced = set(raced_protocols)
        pairs: dict[str, set[PairKey]] = defaultdict(set)
        for key in keys:
            if key.protocol in raced:
                pairs[key.protocol].add(key)
        return cls(settings, dict(pairs), frozenset(exempt), dict(n_folds or {}))

    def raced(self, protocol: str) -> bool:
        return protocol in self.pairs

    def record(self, outcome: FoldOutcome) -> None:
        """A finished fold (any status: an error row finishes the fold for the round too)."""
        key = outcome.pair
        if not self.raced(key.protocol):
            return
        self._finished[key].add(outcome.fold)
        if outcome.status == "done":
            acc = float(outcome.metrics.get("accuracy", math.nan))
            self._scores[key][outcome.fold] = (acc, outcome.n_train, outcome.n_test)

    def alive(self, protocol: str) -> list[PairKey]:
        return sorted(k for k in self.pairs.get(protocol, ()) if k not in self.eliminated)

    def may_start(self, key: PairKey, fold: int) -> bool:
        """Fold ``fold`` of a raced pair starts once every earlier round is decided."""
        return (
            not self.raced(key.protocol)
            or fold == 0
            or self._decided.get(key.protocol, -1) >= fold - 1
        )

    def settle(self) -> list[Elimination]:
        """Decide every round that all racing pairs have finished; returns new eliminations."""
        new: list[Elimination] = []
        for protocol in sorted(self.pairs):
            while True:
                r = self._decided.get(protocol, -1) + 1
                alive = self.alive(protocol)
                if not alive or not all(r in self._finished[k] for k in alive):
                    break
                new.extend(self._decide(protocol, r, alive))
                self._decided[protocol] = r
        return new

    def _decide(self, protocol: str, r: int, alive: list[PairKey]) -> list[Elimination]:
        folds = range(r + 1)
        if not self.settings.min_folds <= r + 1 < self.n_folds.get(protocol, math.inf):
            return []
        complete = {
            k: np.array([self._scores[k][f][0] for f in folds])
            for k in alive
            if all(f in self._scores[k] for f in folds)
        }
        if len(complete) < 2:
            return []
        if self.settings.test == "friedman":
            leader, pvalues, p_friedman = _conover_against_leader(complete, self.settings.alpha)
        else:
            leader, pvalues = self._ttest_against_leader(complete, folds)
            p_friedman = None
        tested = [k for k in pvalues if (k.feature_set, k.family) not in self.exempt]
        if not tested:
            return []
        adjusted = holm(np.array([pvalues[k] for k in tested]))
        out = []
        for k, p in zip(tested, adjusted, strict=True):
            if p < self.settings.alpha:
                e = Elimination(k, r + 1, leader, float(p), self.settings.test, p_friedman)
                self.eliminated[k] = e
                log.info("racing: %s %s", k.label, e.message)
                out.append(e)
        return out

    def _ttest_against_leader(
        self, complete: Mapping[PairKey, np.ndarray], folds: range
    ) -> tuple[PairKey, dict[PairKey, float]]:
        """The best mean leads (ties to the first pair in name order: deterministic); every
        other pair's one-sided corrected t-test p against it."""
        leader = min(complete, key=lambda k: (-complete[k].mean(), k))
        pvalues: dict[PairKey, float] = {}
        for k in sorted(complete):
            if k == leader:
                continue
            n_train = float(np.mean([self._scores[k][f][1] for f in folds]))
            n_test = float(np.mean([self._scores[k][f][2] for f in folds]))
            t = corrected_resampled_ttest(complete[k], complete[leader], n_train, n_test)
            if not math.isfinite(t.p):
                pvalues[k] = 1.0
            else:  # one-sided: is the pair worse than the leader?
                pvalues[k] = t.p / 2 if t.t < 0 else 1 - t.p / 2
        return leader, pvalues


def _conover_against_leader(
    complete: Mapping[PairKey, np.ndarray], alpha: float
) -> tuple[PairKey, dict[PairKey, float], float | None]:
    """The best rank sum leads; once the Friedman test over every pair rejects at ``alpha``,
    every other pair's one-sided Conover p against it (none before: the omnibus test guards the
    post-hoc ones, as in irace). Fewer than 3 pairs: no Friedman test, nobody is tested."""
    keys = sorted(complete)
    if len(keys) < 3:
        return keys[0], {}, None
    res = friedman_conover(np.column_stack([complete[k] for k in keys]))
    leader = keys[res.best]
    if not res.pvalue < alpha:
        return leader, {}, res.pvalue
    pvalues = {k: float(p) for k, p in zip(keys, res.p_worse, strict=True) if k != leader}
    return leader, pvalues, res.pvalue
