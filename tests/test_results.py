"""The FoldOutcome fields are the one results schema: result columns, JSON, MLflow's fold
metrics and outcome.json are derived from them, so a field added once shows up everywhere."""

from __future__ import annotations

import dataclasses
import json

from benchmark.results import (
    COLUMNS,
    RESULT_COLUMNS,
    SCORED,
    FoldOutcome,
    PairKey,
    results_frame,
)

PAIR = PairKey("csv_30s", "forest", "random_kfold")


def test_every_field_is_a_column_and_round_trips() -> None:
    outcome = FoldOutcome(PAIR, 2, "done", metrics={"accuracy": 0.5}, n_trials=3, coverage=1.0)
    own = [c for f in dataclasses.fields(FoldOutcome) for c in f.metadata.get(COLUMNS, (f.name,))]
    assert set(own) <= set(RESULT_COLUMNS)
    frame = results_frame([outcome.row(seed=0)])
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert frame.loc[0, "accuracy"] == 0.5 and frame.loc[0, "feature_set"] == "csv_30s"
    again = FoldOutcome.from_json(json.loads(json.dumps(outcome.to_json())))
    assert json.dumps(again.row()) == json.dumps(outcome.row())  # NaN-safe comparison
    assert {f"fold_{k}" for k in outcome.scores()} >= {"fold_accuracy", "fold_n_trials"}
    assert outcome.summary()["pair"] == PAIR.label


def test_a_new_field_appears_in_every_view() -> None:
    extended = dataclasses.make_dataclass(
        "ExtendedOutcome",
        [("gpu_s", float, dataclasses.field(default=1.5, metadata={SCORED: True}))],
        bases=(FoldOutcome,),
    )
    outcome = extended(PAIR, 0, "done")
    assert outcome.row()["gpu_s"] == 1.5
    assert outcome.to_json()["gpu_s"] == 1.5
    assert outcome.summary()["gpu_s"] == 1.5
    assert outcome.scores()["gpu_s"] == 1.5
    assert extended.from_json(outcome.to_json()).gpu_s == 1.5
