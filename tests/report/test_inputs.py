"""What the report reads when run.json says less than a config would: the config's defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.config import DEFAULTS, config_from_dict
from benchmark.report import DEFAULT_BASELINE
from benchmark.report.inputs import load_inputs


def _results_folder(folder: Path, run: dict | None) -> Path:
    folder.mkdir()
    rows = {"feature_set": ["csv_30s"], "family": ["lda"], "protocol": ["p"], "fold": [0]}
    pd.DataFrame({**rows, "status": ["done"]}).to_parquet(folder / "results.parquet")
    if run is not None:
        (folder / "run.json").write_text(json.dumps(run))
    return folder


@pytest.mark.parametrize("run", [None, {"config": {"name": "old"}}], ids=["no run.json", "none"])
def test_a_run_naming_no_baseline_gets_the_config_default_baseline(
    tmp_path: Path, run: dict | None
) -> None:
    inputs = load_inputs(_results_folder(tmp_path / "bench", run))
    default = config_from_dict({"name": "bare"}, source="test")
    assert inputs.baseline == default.baseline == DEFAULTS["baseline"] == dict(DEFAULT_BASELINE)
    assert inputs.seed == default.seed
    # the page's copy is its own: the report cannot change the config default
    inputs.baseline["family"] = "lda"
    assert DEFAULTS["baseline"]["family"] == "seed_mlp"
