"""``run --dry-run`` with audio feature sets: the extraction time per set and the study's
core-hours, from the sets' measured CPU seconds per clip, without extracting a clip (the
studies are timed on placeholder rows of the real shape); a cached set is read back and costs
nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_gtzan import make_fake_gtzan

from benchmark.cli import main
from benchmark.data import Dataset
from benchmark.execution.plan import RunOptions, make_plan
from benchmark.features import get_feature_set

#: two audio sets and the CSV baseline, one cheap family, one protocol
SETS = ["csv_30s", "librosa_30s", "librosa_3s"]


@pytest.fixture(scope="module")
def thousand_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated folder with all 1,000 clips of audio (1 s each: a dry run reads one)."""
    root = tmp_path_factory.mktemp("g1000") / "gtzan"
    return make_fake_gtzan(
        root, n_per_genre=100, with_audio=True, with_images=False, with_csv_3s=False
    )


def test_dry_run_prints_extraction_per_set_and_core_hours_without_extracting(
    thousand_clips: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config.file(
        name="dry", extends="full", feature_sets=SETS, families=["lda"],
        protocols={"artist_kfold": {"n_folds": 3}}, inner_folds=2,
    )  # fmt: skip
    results = tmp_path / "results"
    args = ["run", "--config", str(cfg), "--data-dir", str(thousand_clips)]
    args += ["--results-dir", str(results), "--no-tracking", "--dry-run"]
    out = CliRunner().invoke(main, args, terminal_width=200)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    rows = {ln.split("│")[1].strip(): ln for ln in lines if "to extract" in ln}
    assert set(rows) == {"librosa_30s", "librosa_3s"}
    header = next(ln for ln in lines if "feature set" in ln and "CPU s/clip" in ln)
    assert "input kind" in header and "view" not in header
    for name, row in rows.items():
        per_clip = get_feature_set(name).extract_cpu_s
        cells = [c.strip() for c in row.split("│")[1:-1]]
        assert cells[1] == "tabular" and cells[2] == "1000"
        assert cells[3] == f"{per_clip:.2f} (measured)"
        assert cells[4] == f"{1000 * per_clip / 3600:.3f}"
    core_h = 1000 * (0.35 + 0.38) / 3600
    assert f"extraction: {core_h:.2f} core-hours" in out.output
    study = next(ln for ln in lines if ln.startswith("the study without a budget: "))
    assert f"+ extraction {core_h:.2f})" in study
    # nothing was extracted: only the CSV set is in the cache
    assert [p.name.split("-")[0] for p in (results / "cache").iterdir()] == ["csv_30s"]


def test_a_cached_audio_set_is_read_back_and_costs_nothing(
    partial_audio_gtzan: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config(
        name="cached", feature_sets=["csv_30s", "librosa_30s"], families=["lda"],
        feature_params={"librosa_30s": {"seconds": 2}},
    )  # fmt: skip
    opts = RunOptions(data_dir=str(partial_audio_gtzan), results_root=tmp_path)
    data = Dataset.open(partial_audio_gtzan)
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    dry = make_plan(cfg, data, opts, storage, extract=False)
    (estimate,) = dry.extraction
    assert not estimate.cached and estimate.clips == 30 and estimate.core_s > 0
    real = make_plan(cfg, data, opts, storage)  # extracts and caches
    assert real.extraction == []
    again = make_plan(cfg, data, opts, storage, extract=False)
    (estimate,) = again.extraction
    assert estimate.cached and estimate.core_s == 0
    # the placeholder had the real shape and tracks: the same jobs, only the values differ
    for a, b in zip(dry.jobs, again.jobs, strict=True):
        assert a.X.shape == b.X.shape and (a.row_track == b.row_track).all()
