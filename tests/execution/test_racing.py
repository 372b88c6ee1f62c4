"""Racing across pairs: who is eliminated, when, and what never takes part."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import run_local

from benchmark.config import RacingSettings
from benchmark.errors import ConfigError
from benchmark.execution.racing import Race
from benchmark.results import FoldOutcome, PairKey

GOOD, CLOSE, BAD, BASE = (PairKey("s", f, "kfold") for f in ("good", "close", "bad", "base"))
ACC = {
    GOOD: [0.80, 0.82, 0.79, 0.81, 0.80],
    CLOSE: [0.79, 0.83, 0.78, 0.80, 0.81],
    BAD: [0.30, 0.31, 0.29, 0.33, 0.30],
    BASE: [0.20, 0.22, 0.19, 0.21, 0.20],
}


def _done(key: PairKey, fold: int) -> FoldOutcome:
    return FoldOutcome(
        key, fold, "done", metrics={"accuracy": ACC[key][fold]}, n_train=90, n_test=10
    )


def test_a_clearly_worse_pair_is_eliminated_once_min_folds_are_in() -> None:
    keys = [*ACC, PairKey("s", "bad", "test_split")]
    race = Race.of(RacingSettings(alpha=0.05, min_folds=3), keys, ["kfold"], exempt=[("s", "base")])
    assert "test_split" not in race.pairs  # a single split is never raced
    for fold in range(2):
        assert all(race.may_start(k, fold) for k in ACC)
        for key in ACC:
            race.record(_done(key, fold))
        assert race.settle() == []  # fewer folds than min_folds: nobody is tested
    assert not race.may_start(GOOD, 3)  # round 2 is not decided yet
    for key in (GOOD, CLOSE, BAD):
        race.record(_done(key, 2))
    assert race.settle() == [] and not race.may_start(GOOD, 3)  # waits for the baseline's fold
    race.record(_done(BASE, 2))
    (out,) = race.settle()
    assert out.pair == BAD and out.after_folds == 3 and out.leader == GOOD
    assert out.p_holm < 0.05
    assert "eliminated after 3 folds: worse than s · good" in out.message
    assert race.may_start(GOOD, 3)
    # the baseline is worse still, but every pair is compared with it: never eliminated
    assert BASE not in race.eliminated and CLOSE not in race.eliminated
    row = race.eliminated[BAD].outcome(4)
    assert (row.status, row.fold, row.message) == ("eliminated", 4, out.message)


# six pairs within noise of each other, one a few points under them in every fold, a baseline
CLUSTER = {
    "p0": [0.66, 0.52, 0.61, 0.58, 0.59],
    "p1": [0.59, 0.54, 0.59, 0.57, 0.70],
    "p2": [0.61, 0.59, 0.59, 0.58, 0.57],
    "p3": [0.59, 0.61, 0.59, 0.63, 0.59],
    "p4": [0.60, 0.65, 0.62, 0.58, 0.59],
    "p5": [0.62, 0.66, 0.59, 0.59, 0.63],
    "worse": [0.47, 0.49, 0.53, 0.52, 0.50],
    "base": [0.30, 0.31, 0.29, 0.33, 0.30],
}


def _race_cluster(test: str, n_folds: int | None = None) -> dict[str, tuple[int, str]]:
    """Race CLUSTER fold by fold; who was eliminated, after how many folds, with which message."""
    keys = {name: PairKey("s", name, "kfold") for name in CLUSTER}
    rounds = {"kfold": n_folds} if n_folds else None
    race = Race.of(RacingSettings(0.05, 3, test), keys.values(), ["kfold"], [("s", "base")], rounds)
    for fold in range(5):
        for name, key in keys.items():
            if key not in race.eliminated:
                acc = {"accuracy": CLUSTER[name][fold]}
                race.record(FoldOutcome(key, fold, "done", metrics=acc, n_train=90, n_test=10))
        race.settle()
    return {k.family: (e.after_folds, e.message) for k, e in race.eliminated.items()}


def test_friedman_racing_decides_sooner_than_the_corrected_ttest() -> None:
    """The pair a few points under the cluster: Conover's post-hoc, pooling the rank noise of
    all eight pairs, drops it after 3 folds; the pairwise corrected t-test needs all 5. The
    price: by fold 5 it has also dropped two pairs of the cluster, 1–2 points under its best
    (what benchmarks/racing_replay.py measures on real folds)."""
    ttest, friedman = _race_cluster("ttest"), _race_cluster("friedman")
    assert set(ttest) == {"worse"} and ttest["worse"][0] == 5
    assert "(corrected t-test, one-sided, Holm p = " in ttest["worse"][1]
    after, message = friedman["worse"]
    assert after == 3
    assert message.startswith("eliminated after 3 folds: worse than s · p4 (Friedman p = 0.0273")
    assert "; Conover post-hoc, one-sided, Holm p = 0.00476)" in message
    assert {k: v[0] for k, v in friedman.items()} == {"worse": 3, "p1": 4, "p2": 5}
    assert "base" not in friedman  # the baseline is ranked with the others, never eliminated


def test_nothing_is_decided_after_the_last_fold() -> None:
    """With every fold in there is nothing left to save: no pair is called eliminated then."""
    assert _race_cluster("ttest", n_folds=5) == {}  # its one decision came after fold 5
    assert {k: v[0] for k, v in _race_cluster("friedman", n_folds=5).items()} == {
        "worse": 3,
        "p1": 4,
    }


def test_friedman_racing_waits_for_the_omnibus_test_and_three_pairs() -> None:
    two = {GOOD: ACC[GOOD], BAD: ACC[BAD]}
    race = Race.of(RacingSettings(0.05, 3, "friedman"), two, ["kfold"])
    for fold in range(5):
        for key in two:
            race.record(_done(key, fold))
        assert race.settle() == []  # two pairs: no Friedman test, nobody eliminated


def test_racing_settings_validate() -> None:
    assert RacingSettings.from_config(False, "t") is None
    assert RacingSettings.from_config({"min_folds": 5}, "t") == RacingSettings(0.05, 5)
    assert RacingSettings.from_config(True, "t") == RacingSettings(0.05, 4, "ttest")
    assert RacingSettings.from_config({"test": "friedman"}, "t") == RacingSettings(test="friedman")
    with pytest.raises(ConfigError, match="racing.test must be one of ttest, friedman, got 'wil"):
        RacingSettings.from_config({"test": "wilcoxon"}, "t")
    with pytest.raises(ConfigError, match="unknown key.*known: alpha, min_folds, test"):
        RacingSettings.from_config({"tests": "friedman"}, "t")


RACED = dict(
    name="raced",
    families=["dummy", "logreg", "lda"],
    protocols={"artist_kfold": {"n_folds": 5}, "fault_filtered": {}},
    n_jobs=2,
    ensembles=False,
    racing={"alpha": 0.2, "min_folds": 3},
)


@pytest.fixture(scope="module")
def raced(fake_gtzan: Path, tmp_path_factory: pytest.TempPathFactory, make_config) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("raced")
    return run_local(make_config(**RACED), fake_gtzan, tmp / "results").results


def test_an_eliminated_pair_keeps_its_rows_and_says_why(raced: pd.DataFrame) -> None:
    dummy = raced[(raced["family"] == "dummy") & (raced["protocol"] == "artist_kfold")]
    assert sorted(dummy["fold"]) == [0, 1, 2, 3, 4]  # a row for every fold, never missing
    assert list(dummy.sort_values("fold")["status"]) == ["done"] * 3 + ["eliminated"] * 2
    message = dummy[dummy["status"] == "eliminated"]["message"].iloc[0]
    assert message.startswith("eliminated after 3 folds: worse than csv_30s · ")
    assert "Holm p = " in message
    # the fault-filtered split is never raced: the eliminated pair is scored on it
    ff = raced[(raced["family"] == "dummy") & (raced["protocol"] == "fault_filtered")]
    assert list(ff["status"]) == ["done"]


def test_racing_never_reads_the_fault_filtered_test(
    raced: pd.DataFrame, fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """Without the fault-filtered protocol, the race eliminates the same pairs after the same
    folds: nothing of that split enters a racing decision."""
    alone = run_local(
        make_config(**{**RACED, "protocols": {"artist_kfold": {"n_folds": 5}}}),
        fake_gtzan,
        tmp_path / "results",
    ).results
    cols = ["feature_set", "family", "fold", "status", "message"]
    kfold = raced[raced["protocol"] == "artist_kfold"][cols].reset_index(drop=True)
    assert "fault_filtered" not in set(alone["protocol"])
    pd.testing.assert_frame_equal(alone[cols].reset_index(drop=True), kfold)


def test_a_local_cluster_races_as_one_process_does(
    raced: pd.DataFrame, fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """``raced`` ran on two Dask worker processes: the client decides each round from the
    outcomes as they come, so one process eliminates the same pairs after the same folds, with
    the same messages."""
    one = make_config(**{**RACED, "n_jobs": 1})
    res = run_local(one, fake_gtzan, tmp_path / "results").results
    cols = ["feature_set", "family", "protocol", "fold", "status", "message"]
    by_cluster = res[cols].sort_values(cols[:4]).reset_index(drop=True)
    by_run = raced[cols].sort_values(cols[:4]).reset_index(drop=True)
    assert (by_run["status"] == "eliminated").sum() == 2
    pd.testing.assert_frame_equal(by_cluster, by_run)
